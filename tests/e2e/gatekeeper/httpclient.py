#!/usr/bin/env python3
"""Scripted HTTP/1.x client over TLS for the gatekeeper e2e tests: the exact bytes of each
request, one connection, and a report of what came back and how the connection ended.

httpclient.py PORT SNI CA [--source IP] [--cert C --key K] STEP...
  --send TEXT        send TEXT (Python escapes: \\r\\n, \\x00)
  --read             read one response; prints "status=N body=REPR" ("status=none how=..." if none),
                     or "interim=N" for a 1xx other than 101 (the next --read reads on)
  --read-head        the same for a response to HEAD (no body)
  --end              waits up to 5 s for the end: "end=close_notify|eof|reset|timeout|data:REPR"
  --sleep S          pause S seconds
  --wait-file F      pause until file F exists (at most 30 s)
  --wait-lines F TEXT N  pause until at least N lines of file F contain TEXT (at most 30 s)
  --touch F          create file F (tells the test script where we are)
  --flood TEXT N     send TEXT repeatedly, N bytes at most, until the server answers or the
                     send fails; prints "flood_sent=BYTES"
"""
import os
import select
import socket
import ssl
import sys
import time


def unescape(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


class Conn:
    def __init__(self, port, sni, ca, cert=None, key=None, source=None):
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", int(port)), timeout=10,
                                       source_address=(source, 0) if source else None)
        self.s = ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)
        self.buf = b""

    def more(self, timeout=10):
        """Reads more bytes into buf; returns how the stream ended ("" while data comes)."""
        self.s.settimeout(timeout)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return "timeout"
        except ssl.SSLEOFError:
            return "eof"
        except ConnectionResetError:
            return "reset"
        except ssl.SSLError as e:
            return "ssl_error:" + e.reason if e.reason else "ssl_error"
        except OSError as e:
            return "error:" + str(e)
        if not d:
            return "close_notify"
        self.buf += d
        return ""

    def line(self):
        while b"\r\n" not in self.buf:
            how = self.more()
            if how:
                return None, how
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln, ""

    def take(self, n):
        while len(self.buf) < n:
            how = self.more()
            if how:
                got, self.buf = self.buf, b""
                return got, how
        got, self.buf = self.buf[:n], self.buf[n:]
        return got, ""

    def read_response(self, head=False):
        """(status, headers, body, how): how is "" for a complete response, "interim" for a
        1xx other than 101, else why the response is incomplete."""
        ln, how = self.line()
        if ln is None:
            return None, {}, b"", how
        status = int(ln.split(b" ", 2)[1])
        headers = {}
        while True:
            h, how = self.line()
            if h is None:
                return status, headers, b"", how
            if h == b"":
                break
            k, v = h.split(b":", 1)
            headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
        if 100 <= status < 200 and status != 101:
            return status, headers, b"", "interim"
        if head or status in (101, 204, 304):
            return status, headers, b"", ""
        if "transfer-encoding" in headers:
            body = b""
            while True:
                size_line, how = self.line()
                if size_line is None:
                    return status, headers, body, how
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t, how = self.line()
                        if t is None or t == b"":
                            return status, headers, body, how
                chunk, how = self.take(size + 2)
                body += chunk[:size]
                if how:
                    return status, headers, body, how
        if "content-length" in headers:
            body, how = self.take(int(headers["content-length"]))
            return status, headers, body, how
        while True:  # close-delimited
            how = self.more()
            if how:
                body, self.buf = self.buf, b""
                return status, headers, body, "" if how == "close_notify" else how


def main():
    a = sys.argv[1:]
    port, sni, ca = a[0], a[1], a[2]
    rest = a[3:]
    cert = key = source = None
    if rest[:1] == ["--source"]:
        source = rest[1]
        rest = rest[2:]
    if rest[:1] == ["--cert"]:
        cert, key = rest[1], rest[3]
        rest = rest[4:]
    c = Conn(port, sni, ca, cert, key, source)
    i = 0
    while i < len(rest):
        op = rest[i]
        i += 1
        if op == "--send":
            try:
                c.s.sendall(unescape(rest[i]))
            except OSError as e:
                print("send_failed=%s" % type(e).__name__)
            i += 1
        elif op in ("--read", "--read-head"):
            status, headers, body, how = c.read_response(head=op == "--read-head")
            if status is None:
                print("status=none how=%s" % how)
            elif how == "interim":
                print("interim=%d" % status)
            else:
                print("status=%d body=%r%s" % (status, body[:300], (" how=" + how) if how else ""))
                if "connection" in headers:
                    print("connection=%s" % headers["connection"])
        elif op == "--end":
            how = ""
            start = time.monotonic()
            while not how and not c.buf:
                how = c.more(timeout=max(0.1, 5 - (time.monotonic() - start)))
            print("end=" + ("data:%r" % c.buf[:200] if c.buf else how))
            c.buf = b""
        elif op == "--sleep":
            time.sleep(float(rest[i]))
            i += 1
        elif op == "--wait-file":
            deadline = time.monotonic() + 30
            while not os.path.exists(rest[i]) and time.monotonic() < deadline:
                time.sleep(0.05)
            i += 1
        elif op == "--wait-lines":
            path, text, want = rest[i], rest[i + 1], int(rest[i + 2])
            i += 3
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with open(path, errors="replace") as f:
                    if sum(text in ln for ln in f) >= want:
                        break
                time.sleep(0.02)
            else:
                print("wait_lines=timeout")
        elif op == "--touch":
            open(rest[i], "w").close()
            i += 1
        elif op == "--flood":
            pattern, total = unescape(rest[i]), int(rest[i + 1])
            i += 2
            sent = 0
            c.s.setblocking(False)
            while sent < total:
                r, w, _ = select.select([c.s], [c.s], [], 5)
                if r:  # a response, or only a TLS 1.3 session ticket (no application data)
                    try:
                        d = c.s.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        d = None
                    except OSError:
                        break
                    if d is not None:
                        c.buf += d
                        break
                if not w:
                    if not r:
                        break
                    continue
                try:
                    sent += c.s.send(pattern)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    break
            c.s.setblocking(True)
            print("flood_sent=%d" % sent)
        else:
            sys.exit("unknown step " + op)


if __name__ == "__main__":
    main()
