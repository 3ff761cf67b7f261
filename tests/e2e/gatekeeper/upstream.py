#!/usr/bin/env python3
"""Test upstreams for the gatekeeper e2e tests (loopback only).

http    : HTTP/1.1 keep-alive server (https PORT CERT KEY: the same over TLS) answering every request with JSON
          {"method","path","headers","body_len","conn"}; "conn" counts requests on the connection.
pp2echo : TCP server that parses a PROXY v2 header (with TLVs), answers one line of JSON
          describing it, then echoes everything back.
stub PORT LOG [CERT KEY]: a raw HTTP/1.1 server (TLS with CERT KEY) that logs every request it
          receives (one JSON line: conn, n, method, target, header pairs as sent, raw body) to
          LOG and misbehaves on request by path (see StubHandler); anything else gets the JSON
          echo of the request. Also logged: {"conn", "late_sent"} once the late bytes of /late,
          /head-late or /204-late are sent, and {"conn", "closed"} when a connection has ended
          (after the last byte the gatekeeper sent on it: a barrier for "nothing more came").
"""
import json
import socket
import socketserver
import struct
import sys
import threading
import time
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


class StubHandler(socketserver.BaseRequestHandler):
    """Reads requests itself (no library between the wire and the log) and answers by path:
    /late        200 "ok", then 0.2 s later a second, unasked response "POISONED"
    /head-late   (HEAD) a header with Content-Length: 8, then 0.2 s later 8 body bytes
    /204-late    204, then 0.2 s later an unasked response "POISONED"
    /truncate    Content-Length: 100 with 10 bytes, then FIN
    /reset       a close-delimited body cut by a TCP reset (SO_LINGER 0)
    /eof-body    a close-delimited body ended by FIN (TLS: without close_notify)
    /switch      101 Upgrade: h2c whatever was asked; everything after it is logged as "spliced"
    /ws          101 Upgrade: websocket, then echo; /ws-h2c answers a websocket request with h2c
    /bigheader   200 with a 12 KB header field
    /extra       200 "ok" and, in the same write, an unasked response "POISONED" (a desync)
    /close       200 "ok" with Connection: close, then FIN
    /cl-te       Content-Length and Transfer-Encoding together
    /trailer-flood  a chunked body whose trailer section never ends
    /early-slow  401 before reading the body, its own body sent in two parts 1.5 s apart
    /hints       103 Early Hints, then 0.2 s later 200 "hinted"
    """
    log = None
    lock = threading.Lock()
    conns = 0

    def record(self, doc):
        with self.lock:
            with open(self.log, "a") as f:
                f.write(json.dumps(doc) + "\n")

    def readline(self):
        while b"\r\n" not in self.buf:
            d = self.request.recv(65536)
            if not d:
                return None
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def readn(self, n):
        while len(self.buf) < n:
            d = self.request.recv(65536)
            if not d:
                return None
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, b):
        self.request.sendall(b)

    def handle(self):
        with self.lock:
            StubHandler.conns += 1
            self.conn = StubHandler.conns
        self.buf = b""
        n = 0
        try:
            while self.serve_one(n):
                n += 1
        except (OSError, ValueError):
            pass
        self.record({"conn": self.conn, "closed": True})

    def serve_one(self, n):
        line = self.readline()
        if not line:
            return False
        method, target, version = line.decode("latin-1").split(" ", 2)
        headers = []
        while True:
            h = self.readline()
            if h is None:
                return False
            if h == b"":
                break
            k, v = h.decode("latin-1").split(":", 1)
            headers.append([k, v.strip()])
        lower = {k.lower(): v for k, v in headers}
        path = target.split("?")[0]
        raw = b""
        if path == "/early-slow":
            # Answers before the body (as a 401/413 does), the body in two parts 1.5 s apart.
            self.record({"conn": self.conn, "n": n, "method": method, "target": target, "version": version,
                         "headers": headers, "body_raw": ""})
            self.send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 10\r\n\r\nhello")
            time.sleep(1.5)
            self.send(b"world")
            return False
        if "content-length" in lower:
            raw = self.readn(int(lower["content-length"])) or b""
        elif lower.get("transfer-encoding", "").lower() == "chunked":
            while True:
                sl = self.readline()
                raw += sl + b"\r\n"
                size = int(sl.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t = self.readline()
                        raw += t + b"\r\n"
                        if t == b"":
                            break
                    break
                raw += self.readn(size + 2)
        self.record({"conn": self.conn, "n": n, "method": method, "target": target, "version": version,
                     "headers": headers, "body_raw": raw.decode("latin-1")})
        if path == "/late":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(0.2)
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")
            self.record({"conn": self.conn, "late_sent": path})
        elif path == "/head-late":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
            time.sleep(0.2)
            self.send(b"POISONED")
            self.record({"conn": self.conn, "late_sent": path})
        elif path == "/204-late":
            self.send(b"HTTP/1.1 204 No Content\r\n\r\n")
            time.sleep(0.2)
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")
            self.record({"conn": self.conn, "late_sent": path})
        elif path == "/hints":
            self.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            time.sleep(0.2)
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhinted")
        elif path == "/truncate":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            time.sleep(0.1)
            return False
        elif path == "/reset":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial body")
            time.sleep(0.1)
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()  # not socketserver's shutdown(SHUT_WR), which would send a FIN first
            return False
        elif path == "/eof-body":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until eof")
            time.sleep(0.1)
            return False
        elif path in ("/switch", "/ws", "/ws-h2c"):
            proto = b"websocket" if path == "/ws" else b"h2c"
            self.send(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + proto + b"\r\n\r\n")
            while True:
                if self.buf:
                    d, self.buf = self.buf, b""
                else:
                    d = self.request.recv(65536)
                if not d:
                    return False
                self.record({"conn": self.conn, "spliced": d.decode("latin-1")})
                if path == "/ws":
                    self.send(d)
        elif path == "/cl-te":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        elif path == "/trailer-flood":
            self.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n")
            for _ in range(4096):  # 256 KiB of trailer fields, never ended
                self.send(b"X-Trailer: " + b"t" * 52 + b"\r\n")
            time.sleep(1)
            return False
        elif path == "/extra":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")
        elif path == "/close":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            time.sleep(0.1)
            return False
        elif path == "/bigheader":
            self.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 12288 + b"\r\nContent-Length: 3\r\n\r\nbig")
        else:
            doc = json.dumps({"method": method, "target": target, "headers": headers, "body_len": len(raw),
                              "body_raw": raw.decode("latin-1"), "conn": self.conn, "n": n}).encode() + b"\n"
            self.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(doc)
                      + (b"" if method == "HEAD" else doc))
        return lower.get("connection", "").lower() != "close"


class TlsStubServer(TServer):
    ctx = None

    def get_request(self):
        sock, addr = super().get_request()
        return self.ctx.wrap_socket(sock, server_side=True), addr


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
    elif mode == "stub":
        StubHandler.log = sys.argv[3]
        if len(sys.argv) > 5:
            import ssl
            TlsStubServer.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            TlsStubServer.ctx.load_cert_chain(sys.argv[4], sys.argv[5])
            TlsStubServer(("127.0.0.1", port), StubHandler).serve_forever()
        else:
            TServer(("127.0.0.1", port), StubHandler).serve_forever()
    elif mode == "pp2echo":
        TServer(("127.0.0.1", port), PP2Handler).serve_forever()


if __name__ == "__main__":
    main()
