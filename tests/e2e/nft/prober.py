#!/usr/bin/env python3
"""Connects to HOST:PORT (alternating between the given hosts) and reports what happened.

  prober.py once HOST PORT [TIMEOUT]       exit 0 if the greeting "ok" arrived, 1 otherwise
  prober.py loop STOPFILE PORT TIMEOUT HOST... : until STOPFILE exists, connect over and over;
                                                  prints {"ok": n, "failed": n, "errors": {...}}
  prober.py hold HOST PORT READYFILE GOFILE : connect, read the greeting, create READYFILE,
                                              wait for GOFILE, then check the connection still
                                              echoes; exit 0 if it does
"""
import json
import os
import socket
import sys
import time


def attempt(host, port, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(16)
                if not chunk:
                    break
                data += chunk
            return data == b"ok\n", "bad greeting" if data != b"ok\n" else ""
    except OSError as e:
        return False, type(e).__name__


def main():
    mode = sys.argv[1]
    if mode == "once":
        timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
        ok, _ = attempt(sys.argv[2], int(sys.argv[3]), timeout)
        sys.exit(0 if ok else 1)
    if mode == "loop":
        stop, port, timeout, hosts = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
        ok = failed = 0
        errors = {}
        i = 0
        while not os.path.exists(stop):
            good, err = attempt(hosts[i % len(hosts)], port, timeout)
            i += 1
            if good:
                ok += 1
            else:
                failed += 1
                errors[err] = errors.get(err, 0) + 1
        print(json.dumps({"ok": ok, "failed": failed, "errors": errors}))
        return
    if mode == "hold":
        host, port, ready, go = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        s = socket.create_connection((host, port), timeout=3)
        s.settimeout(5)
        f = s.makefile("rwb")
        if f.readline() != b"ok\n":
            sys.exit(2)
        open(ready, "w").close()
        deadline = time.time() + 60
        while not os.path.exists(go):
            if time.time() > deadline:
                sys.exit(3)
            time.sleep(0.05)
        f.write(b"still-here\n")
        f.flush()
        sys.exit(0 if f.readline() == b"still-here\n" else 1)
    sys.exit(64)


if __name__ == "__main__":
    main()
