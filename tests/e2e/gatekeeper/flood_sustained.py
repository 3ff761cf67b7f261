#!/usr/bin/env python3
"""A sustained connection flood (bounded: stops after --seconds and closes everything).

  flood_sustained.py --dst ADDR --port P --sni NAME --cert C --key K --ca CA \
      --src ADDR=KIND:COUNT ... --seconds S

Keeps COUNT connections of KIND open from source ADDR, opening a new one whenever one is
closed (by the server's timeouts or a reset at accept), 20 ms apart per slot:
  bare   TCP connected, nothing sent (half-open from the server's view: no ClientHello);
  hello  one real TLS ClientHello, then silence (a handshake left half done);
  idle   a complete mTLS handshake with the client certificate, then no request.
Prints "opened" once every slot has made its first attempt, and at the end one line per
source and kind:
  src=ADDR kind=KIND attempts=N resets=R closed_later=L open_max=M
resets: closed by the server within 0.5 s of connecting (refused at accept or in the
handshake); closed_later: closed by the server after that (its timeouts); open_max: most of
this kind open at once.
"""
import argparse
import asyncio
import socket
import ssl
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from flood import client_hello  # noqa: E402


class Stats:
    def __init__(self):
        self.attempts = self.resets = self.closed_later = self.open = self.open_max = 0


async def slot(a, src, kind, st, ctx, hello, end, first_done):
    family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    first = True
    while time.monotonic() < end:
        st.attempts += 1
        t0 = time.monotonic()
        writer = None
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.setblocking(False)
            await asyncio.get_running_loop().sock_connect(s, (a.dst, a.port))
            if kind == "idle":
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(sock=s, ssl=ctx, server_hostname=a.sni), timeout=10)
            else:
                reader, writer = await asyncio.open_connection(sock=s)
                if kind == "hello":
                    writer.write(hello)
                    await writer.drain()
            st.open += 1
            st.open_max = max(st.open_max, st.open)
            if first:
                first, _ = False, first_done()
            try:
                # Nothing more is sent; read what comes (a ServerHello, tickets) until the
                # server closes, or the flood ends.
                async def until_eof():
                    while await reader.read(65536):
                        pass

                await asyncio.wait_for(until_eof(), timeout=max(0.0, end - time.monotonic()))
                closed_by_server = True
            except asyncio.TimeoutError:
                closed_by_server = False
            except (OSError, ssl.SSLError):  # a reset or an alert: closed too
                closed_by_server = True
            st.open -= 1
            if closed_by_server:
                if time.monotonic() - t0 < 0.5:
                    st.resets += 1
                else:
                    st.closed_later += 1
        except (OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            st.resets += 1
            if first:
                first, _ = False, first_done()
        finally:
            if writer is not None:
                writer.close()
        await asyncio.sleep(0.02)


async def run(a):
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    hello = client_hello(a.sni)
    end = time.monotonic() + a.seconds
    stats, tasks = {}, []
    total = sum(int(s.rsplit(":", 1)[1]) for s in a.src)
    started = [0]

    def first_done():
        started[0] += 1
        if started[0] == total:
            print("opened", flush=True)

    for spec in a.src:
        src, rest = spec.split("=", 1)
        kind, count = rest.split(":")
        st = stats.setdefault((src, kind), Stats())
        tasks += [asyncio.create_task(slot(a, src, kind, st, ctx, hello, end, first_done)) for _ in range(int(count))]
    await asyncio.gather(*tasks)
    for (src, kind), st in stats.items():
        print(f"src={src} kind={kind} attempts={st.attempts} resets={st.resets} "
              f"closed_later={st.closed_later} open_max={st.open_max}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sni", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--src", action="append", required=True, help="ADDR=KIND:COUNT")
    ap.add_argument("--seconds", type=float, required=True)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
