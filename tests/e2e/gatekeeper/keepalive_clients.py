#!/usr/bin/env python3
"""Opens N mTLS keep-alive connections, makes one request on each, prints "phase1 ok=K",
waits until TRIGGER exists, makes a second request on every same connection and prints
"phase2 ok=K" (a connection dropped by a reload counts as failed). With a 9th argument METHOD,
the second request uses that method (Content-Length: 0) and the status line of the last second
response is printed too: "phase2 ok=K status=NNN" (status=closed when the connection dropped)."""
import os
import socket
import ssl
import sys
import time

port, sni, n, cert, key, ca, trigger = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:8]
method2 = sys.argv[8].encode() if len(sys.argv) > 8 else None
last_status = "closed"
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)


def request(s, method=b"GET"):
    global last_status
    extra = b"Content-Length: 0\r\n" if method != b"GET" else b""
    s.sendall(method + b" /ka HTTP/1.1\r\nHost: " + sni.encode() + b"\r\n" + extra + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    last_status = head.split(b"\r\n")[0].split(b" ")[1].decode()
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            return False
        rest += chunk
    return head.startswith(b"HTTP/1.1 200")


conns = []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname=sni)
    s.settimeout(10)
    conns.append(s)
ok = sum(1 for s in conns if request(s))
print("phase1 ok=%d" % ok, flush=True)
deadline = time.time() + 60
while not os.path.exists(trigger) and time.time() < deadline:
    time.sleep(0.05)
ok = 0
for s in conns:
    try:
        ok += request(s, method2 or b"GET")
    except OSError:
        pass
print("phase2 ok=%d" % ok + (" status=" + last_status if method2 else ""), flush=True)
