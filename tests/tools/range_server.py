#!/usr/bin/env python3
"""Test double for Cloudflare's range endpoints, over HTTPS on loopback.

What it answers is chosen per request by the file DIR/mode (one word), so a test switches
behaviour by writing that file. Every request is appended to DIR/requests.log as
"<path> inm=<If-None-Match or ->". The bound port is written to DIR/port.

modes: good (DIR/ranges.json as the JSON API, ETag + 304), text (DIR/ranges.txt as text/plain),
500, 403html, html200, slow (drips the body slower than any sane timeout), huge (10 MB),
fail (success:false), truncated, empty, badtype (application/octet-stream), badetag.
"""
import argparse
import hashlib
import http.server
import os
import ssl
import sys
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cf-test/1"

    def log_message(self, fmt, *args):  # quiet; requests.log is the record
        pass

    def _send(self, status, body, ctype="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        d = self.server.dir
        inm = self.headers.get("If-None-Match", "-")
        with open(os.path.join(d, "requests.log"), "a") as f:
            f.write(f"{self.path} inm={inm}\n")
        try:
            mode = open(os.path.join(d, "mode")).read().strip()
        except FileNotFoundError:
            mode = "good"
        if mode == "good":
            body = open(os.path.join(d, "ranges.json"), "rb").read()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if inm == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(200, body, "application/json", {"ETag": etag})
        elif mode == "badetag":  # a raw 0xFF byte in the ETag header (latin-1 on the wire)
            self._send(200, open(os.path.join(d, "ranges.json"), "rb").read(), "application/json",
                       {"ETag": '"bad\xffetag"'})
        elif mode == "text":
            self._send(200, open(os.path.join(d, "ranges.txt"), "rb").read(), "text/plain; charset=utf-8")
        elif mode == "500":
            self._send(500, b'{"success":false}', "application/json")
        elif mode == "403html":
            self._send(403, b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>challenge</body></html>",
                       "text/html; charset=UTF-8")
        elif mode == "html200":
            self._send(200, b"<!DOCTYPE html><html><body>Attention Required!</body></html>", "text/html")
        elif mode == "slow":
            body = open(os.path.join(d, "ranges.json"), "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                try:
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1)
        elif mode == "huge":
            self._send(200, b'{"result":{"ipv4_cidrs":["' + b"1" * (10 * 1024 * 1024) + b'"]}}', "application/json")
        elif mode == "fail":
            self._send(200, b'{"result":null,"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[]}')
        elif mode == "truncated":
            body = open(os.path.join(d, "ranges.json"), "rb").read()
            self._send(200, body[: len(body) // 2])
        elif mode == "empty":
            self._send(200, b"", "application/json")
        elif mode == "badtype":
            self._send(200, open(os.path.join(d, "ranges.json"), "rb").read(), "application/octet-stream")
        else:
            self._send(500, b"unknown test mode", "text/plain")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--max-seconds", type=int, default=900, help="exit on its own after this long")
    a = ap.parse_args()
    srv = Server((a.bind, 0), Handler)
    srv.dir = a.dir
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(os.path.join(a.dir, "port.tmp"), "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(os.path.join(a.dir, "port.tmp"), os.path.join(a.dir, "port"))
    threading.Timer(a.max_seconds, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
