#!/usr/bin/env python3
"""Pre-handshake flood probe (bounded: stops after --watch seconds).

Opens TCP connections to DST:PORT from each --src ADDR=COUNT in turn (bound to ADDR) and
sends nothing (--mode bare), one real TLS ClientHello and nothing after it (--mode hello, with
--sni), the same ClientHello one byte every 0.3 s (--mode slowhello), or a record holding only
a handshake header that announces a 128 KiB ClientHello, which OpenSSL allocates at once
(--mode bigheader). Prints "opened" once every connection is made, then watches them and
prints one line per source:
  src=ADDR opened=N at_once=A later=L open=O later_min=X.X later_max=Y.Y
at_once: closed (FIN or reset) by the server within 1 s of connecting; later: closed after
that (seconds after connecting: min and max); open: still open when the watch ended."""
import argparse
import selectors
import socket
import ssl
import sys
import time


def client_hello(sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--src", action="append", required=True, help="ADDR=COUNT")
    ap.add_argument("--mode", choices=["bare", "hello", "slowhello", "bigheader"], default="bare")
    ap.add_argument("--sni", default="")
    ap.add_argument("--watch", type=float, default=5.0)
    a = ap.parse_args()

    hello = b""
    if a.mode in ("hello", "slowhello"):
        hello = client_hello(a.sni)
    elif a.mode == "bigheader":
        hello = bytes([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x02, 0x00, 0x00])  # ClientHello of 0x020000 bytes
    drip = []  # slowhello: [socket, bytes left to send]
    family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    sel = selectors.DefaultSelector()
    conns = []  # [src, opened_at, closed_at]
    for spec in a.src:
        src, count = spec.rsplit("=", 1)
        for _ in range(int(count)):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.connect((a.dst, a.port))
            c = [src, time.monotonic(), None]
            if hello and a.mode == "slowhello":
                drip.append([s, hello])
            elif hello:
                try:
                    s.sendall(hello)
                except OSError:
                    c[2] = time.monotonic()
            conns.append(c)
            if c[2] is None:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, c)
            else:
                s.close()
    print("opened", flush=True)

    end = time.monotonic() + a.watch
    next_drip = time.monotonic()
    while time.monotonic() < end and sel.get_map():
        if drip and time.monotonic() >= next_drip:
            next_drip += 0.3
            for d in drip:
                if d[1] and d[0].fileno() >= 0:
                    try:
                        d[0].send(d[1][:1])
                        d[1] = d[1][1:]
                    except OSError:
                        d[1] = b""
        wait = end - time.monotonic()
        if drip:
            wait = min(wait, max(0.0, next_drip - time.monotonic()))
        for key, _ in sel.select(timeout=max(0.0, wait)):
            try:
                data = key.fileobj.recv(65536)  # the server's flight in hello mode: read on
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                key.data[2] = time.monotonic()
                sel.unregister(key.fileobj)
                key.fileobj.close()

    for src in dict.fromkeys(c[0] for c in conns):
        mine = [c for c in conns if c[0] == src]
        at_once = [c for c in mine if c[2] is not None and c[2] - c[1] < 1.0]
        later = [c[2] - c[1] for c in mine if c[2] is not None and c[2] - c[1] >= 1.0]
        print("src=%s opened=%d at_once=%d later=%d open=%d later_min=%.1f later_max=%.1f" % (
            src, len(mine), len(at_once), len(later), sum(1 for c in mine if c[2] is None),
            min(later, default=0.0), max(later, default=0.0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
