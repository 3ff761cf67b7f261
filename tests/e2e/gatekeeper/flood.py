#!/usr/bin/env python3
"""Pre-handshake flood probe (bounded: stops after --watch seconds).

Opens TCP connections to DST:PORT from each --src ADDR=COUNT in turn (bound to ADDR) and
sends nothing (--mode bare) or one real TLS ClientHello and nothing after it (--mode hello,
with --sni). Prints "opened" once every connection is made, then watches them and prints one
line per source:
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
    ap.add_argument("--mode", choices=["bare", "hello"], default="bare")
    ap.add_argument("--sni", default="")
    ap.add_argument("--watch", type=float, default=5.0)
    a = ap.parse_args()

    hello = client_hello(a.sni) if a.mode == "hello" else b""
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
            if hello:
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
    while time.monotonic() < end and sel.get_map():
        for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
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
