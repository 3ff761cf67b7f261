#!/usr/bin/env python3
"""Test upstreams for the gatekeeper e2e tests (loopback only).

http    : HTTP/1.1 keep-alive server (https PORT CERT KEY: the same over TLS) answering every request with JSON
          {"method","path","headers","body_len","conn"}; "conn" counts requests on the connection.
pp2echo : TCP server that parses a PROXY v2 header (with TLVs), answers one line of JSON
          describing it, then echoes everything back.
"""
import json
import socket
import socketserver
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_pp2(rfile):
    head = rfile.read(16)
    if len(head) < 16 or head[:12] != SIG:
        return {"error": "no PROXY v2 signature", "got": head.hex()}
    ver_cmd, fam, length = head[12], head[13], struct.unpack("!H", head[14:16])[0]
    body = rfile.read(length)
    out = {"ver_cmd": ver_cmd, "fam": fam}
    if fam == 0x11:
        out["src"] = socket.inet_ntop(socket.AF_INET, body[0:4])
        out["dst"] = socket.inet_ntop(socket.AF_INET, body[4:8])
        out["sport"], out["dport"] = struct.unpack("!HH", body[8:12])
        tlvs = body[12:]
    elif fam == 0x21:
        out["src"] = socket.inet_ntop(socket.AF_INET6, body[0:16])
        out["dst"] = socket.inet_ntop(socket.AF_INET6, body[16:32])
        out["sport"], out["dport"] = struct.unpack("!HH", body[32:36])
        tlvs = body[36:]
    else:
        tlvs = body
    out["tlv"] = {}

    def walk(buf):
        res = []
        i = 0
        while i + 3 <= len(buf):
            t, ln = buf[i], struct.unpack("!H", buf[i + 1:i + 3])[0]
            res.append((t, buf[i + 3:i + 3 + ln]))
            i += 3 + ln
        if i != len(buf):
            raise ValueError("TLV overrun")
        return res

    for t, v in walk(tlvs):
        if t == 0x20:
            ssl = {"client": v[0], "verify": struct.unpack("!I", v[1:5])[0]}
            for st, sv in walk(v[5:]):
                ssl[{0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg", 0x25: "key_alg"}.get(st, hex(st))] = sv.decode()
            out["tlv"]["ssl"] = ssl
        elif t == 0x02:
            out["tlv"]["authority"] = v.decode()
        elif t == 0x01:
            out["tlv"]["alpn"] = v.decode()
        elif t == 0xE0:
            out["tlv"]["cert_sha256"] = v.hex()
        else:
            out["tlv"][hex(t)] = v.hex()
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _answer(self):
        self.server_count = getattr(self, "server_count", 0) + 1
        n = int(self.headers.get("Content-Length", "0") or 0)
        body_len = 0
        if n:
            body_len = len(self.rfile.read(n))
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                body_len += len(self.rfile.read(size))
                self.rfile.readline()
        doc = json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                          "body_len": body_len, "conn": self.server_count}).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(doc)

    do_GET = do_POST = do_PUT = do_HEAD = _answer


class PP2Handler(socketserver.StreamRequestHandler):
    def handle(self):
        info = parse_pp2(self.rfile)
        self.wfile.write(json.dumps(info).encode() + b"\n")
        self.wfile.flush()
        while True:
            data = self.rfile.read1(65536)  # the PROXY header read may have buffered payload
            if not data:
                return
            self.request.sendall(data)


class TServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class RawBodyHandler(Handler):
    """Writes the request's header fields and its body exactly as received (chunk framing and
    trailer section included) to RAW_FILE, then answers 200."""
    raw_file = None

    def _answer(self):
        raw = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in self.headers.items()) + b"\r\n"
        n = int(self.headers.get("Content-Length", "0") or 0)
        if n:
            raw += self.rfile.read(n)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t = self.rfile.readline()
                        raw += t
                        if t in (b"\r\n", b""):
                            break
                    break
                raw += self.rfile.read(size + 2)
        with open(self.raw_file, "wb") as f:
            f.write(raw)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer


class ShortKeepAliveHandler(Handler):
    timeout = 0.5  # closes a keep-alive connection idle for 0.5 s (a short keepalive_timeout)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "rawbody":
        RawBodyHandler.raw_file = sys.argv[3]
        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer(("127.0.0.1", port), RawBodyHandler).serve_forever()
    elif mode == "http-short-keepalive":
        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer(("127.0.0.1", port), ShortKeepAliveHandler).serve_forever()
    elif mode == "http":
        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    elif mode == "https":
        import ssl
        ThreadingHTTPServer.daemon_threads = True
        srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.serve_forever()
    elif mode == "pp2echo":
        TServer(("127.0.0.1", port), PP2Handler).serve_forever()


if __name__ == "__main__":
    main()
