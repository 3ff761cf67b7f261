#!/usr/bin/env python3
"""Misbehaving clients of a control socket (tests/e2e/agent_control.sh, control_abuse.sh).

  idle SOCKET N READY STOP   open N connections, send nothing, hold them until the file STOP
                             exists; write how many connected to the file READY
  slow SOCKET CMD SECONDS    send one request, read nothing for SECONDS, then read to the end;
                             print the bytes received and "complete" or "cut"
  request SOCKET LINE        send LINE and a newline; print the reply line, or "error <errno>"
  garbage SOCKET SEED        send 4 KiB of random bytes, then a newline and a valid
                             {"cmd":"uninstall"} line (pipelined); print what comes back
  bigline SOCKET MB          send {"cmd":"uninstall","pad":"xx...} MB megabytes long and a
                             newline; print what comes back
  half SOCKET                send '{"cmd":"uninstall"' without its end, close; print "sent"
  hangup SOCKET N            N times: send {"cmd":"status"} and close before the reply comes
                             (the server then writes to a closed socket: EPIPE, never SIGPIPE)

"What comes back" is the reply line, "eof" (closed without a reply) or "error <errno>".
"""
import errno
import os
import random
import resource
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
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
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


def answer(s):
    """The first line the server sends back, "eof", or "error <errno>"."""
    got = b""
    try:
        while b"\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        if not got:
            return "error " + errno.errorcode.get(e.errno, str(e.errno))
    return got.split(b"\n")[0].decode(errors="replace") if got else "eof"


def send_then_answer(path, payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.connect(path)
    except OSError as e:
        return "error " + errno.errorcode.get(e.errno, str(e.errno))
    try:
        s.sendall(payload)
    except OSError:
        pass  # the server stopped reading (and closed): its reply may be there all the same
    return answer(s)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "idle":
        idle(path, int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif mode == "slow":
        slow(path, sys.argv[3], float(sys.argv[4]))
    elif mode == "request":
        print(send_then_answer(path, sys.argv[3].encode() + b"\n"))
    elif mode == "garbage":
        rnd = random.Random(int(sys.argv[3]))
        junk = bytes(rnd.randrange(256) for _ in range(4096)).replace(b"\n", b" ")
        print(send_then_answer(path, junk + b'\n{"cmd":"uninstall"}\n'))
    elif mode == "bigline":
        pad = b"x" * (int(sys.argv[3]) * 1024 * 1024)
        print(send_then_answer(path, b'{"cmd":"uninstall","pad":"' + pad + b'"}\n'))
    elif mode == "half":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b'{"cmd":"uninstall"')
        s.close()
        print("sent")
    elif mode == "hangup":
        for _ in range(int(sys.argv[3])):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.sendall(b'{"cmd":"status"}\n')
            s.close()
        print("sent")
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
