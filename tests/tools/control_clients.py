#!/usr/bin/env python3
"""Misbehaving clients of a control socket (tests/e2e/agent_control.sh).

  idle SOCKET N READY STOP   open N connections, send nothing, hold them until the file STOP
                             exists; write how many connected to the file READY
  slow SOCKET CMD SECONDS    send one request, read nothing for SECONDS, then read to the end;
                             print the bytes received and "complete" or "cut"
"""
import os
import socket
import sys
import time


def connect(path, patience):
    # A full listen backlog refuses a non-blocking unix connect at once (EAGAIN): retry until
    # the server has accepted enough, or give up after `patience` seconds (a server that
    # stopped accepting).
    deadline = time.monotonic() + patience
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
        except OSError:
            s.close()
            return None


def idle(path, n, ready, stop):
    held = []
    for _ in range(n):
        s = connect(path, 0.2)
        if s is not None:
            held.append(s)
    with open(ready, "w") as f:
        f.write(str(len(held)))
    while not os.path.exists(stop):
        time.sleep(0.1)


def slow(path, cmd, seconds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(path)
    s.sendall(b'{"cmd":"%s"}\n' % cmd.encode())
    time.sleep(seconds)
    got = b""
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    print(len(got), "complete" if got.endswith(b"\n") else "cut")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "idle":
        idle(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif mode == "slow":
        slow(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit("unknown mode " + mode)
