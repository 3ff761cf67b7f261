#!/usr/bin/env python3
"""Slowloris probe: completes mTLS, sends a partial header one byte per second and reports
when the server closes: "closed after N.Ns" (or "still open after 8s")."""
import socket
import ssl
import sys
import time

port, sni, cert, key, ca = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
raw = socket.create_connection(("127.0.0.1", int(port)))
s = ctx.wrap_socket(raw, server_hostname=sni)
start = time.monotonic()
s.sendall(b"GET / HTTP/1.1\r\nHost: " + sni.encode() + b"\r\nX-Slow: ")
s.settimeout(1.0)
while time.monotonic() - start < 8:
    try:
        s.sendall(b"x")
        if s.recv(4096) == b"":
            break
    except socket.timeout:
        continue
    except (OSError, ssl.SSLError):
        break
else:
    print("still open after 8s")
    sys.exit(0)
print("closed after %.1fs" % (time.monotonic() - start))
