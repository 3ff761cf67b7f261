#!/usr/bin/env python3
"""Established, verified clients whose service is measured (bounded by SECONDS).

  steady_clients.py PORT DST SNI N CERT KEY CA SRC TRIGGER SECONDS

Opens N mTLS keep-alive connections from source SRC (client certificate CERT/KEY, server
checked against CA), makes one request on each and prints "ready"; from then on each
connection requests GET / back to back (so that idle_timeout never closes it), and once
TRIGGER exists, for SECONDS more, the requests are counted. A request counts as served when a
"200" response arrives whole within 10 s; a failed one closes its connection, and the next
request opens a new one (counted in reconnects: during a flood at max_connections that new
connection may well be refused). Prints:
  requests=N ok=K failed=F reconnects=C p50_ms=X p99_ms=Y max_ms=Z
(latencies of the served requests, from sending the request to the end of the response).
"""
import os
import socket
import ssl
import sys
import threading
import time

port, dst, sni, n, cert, key, ca, src, trigger, seconds = sys.argv[1:11]
port, n, seconds = int(port), int(n), float(seconds)
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
lock = threading.Lock()
lat, failed, reconnects = [], [0], [0]


def connect():
    raw = socket.create_connection((dst, port), timeout=10, source_address=(src, 0))
    return ctx.wrap_socket(raw, server_hostname=sni)


def request(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + sni.encode() + b"\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")), 0)
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            return False
        rest += chunk
    return head.startswith(b"HTTP/1.1 200")


def client(s):
    end = None
    while end is None or time.monotonic() < end:
        if end is None and os.path.exists(trigger):
            end = time.monotonic() + seconds
        counting = end is not None
        t0 = time.monotonic()
        ok = False
        try:
            if s is None:
                if counting:
                    with lock:
                        reconnects[0] += 1
                s = connect()
            ok = request(s)
        except (OSError, ssl.SSLError):
            ok = False
        if counting:
            with lock:
                if ok:
                    lat.append((time.monotonic() - t0) * 1000)
                else:
                    failed[0] += 1
        if not ok:
            if s is not None:
                s.close()
            s, _ = None, time.sleep(0.05)
    if s is not None:
        s.close()


def main():
    socks = []
    for _ in range(n):
        s = connect()
        if not request(s):
            print("a first request failed", flush=True)
            return 1
        socks.append(s)
    print("ready", flush=True)
    threads = [threading.Thread(target=client, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] if lat else 0  # noqa: E731
    print(f"requests={len(lat) + failed[0]} ok={len(lat)} failed={failed[0]} reconnects={reconnects[0]} "
          f"p50_ms={pct(0.5):.1f} p99_ms={pct(0.99):.1f} max_ms={lat[-1] if lat else 0:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
