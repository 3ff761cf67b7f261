#!/usr/bin/env python3
"""kill -9 the agent at a random point of a set replacement (tests/e2e/agent_kill9.sh).

  kill_during.py PID SOCKET LOG WHEN MAX_MS SEED [APPLY_EVENTS]

Sends {"cmd":"refresh"} on the agent's control socket, then SIGKILLs PID after a random
0..MAX_MS milliseconds counted from
  WHEN=any    the request (anywhere in fetch, validation, state write, apply), or
  WHEN=apply  the agent's "event=refresh.ok" log line (the state file is written, the
              enforcers' apply starts: the kill lands while the batch is built or committed).
Then reads the agent's log written since the request and prints one line:
  "<phase> <delay_ms>"  with phase before_apply | in_apply | after_apply
(in_apply: refresh.ok logged, not yet every enforcer's apply event: APPLY_EVENTS, comma
separated, default "nft.apply"; "xdp.apply" too when the XDP enforcer runs). Exits 1 when the agent was already gone or
the marker did not come within 30 s or the refresh failed (then the line printed says which,
with the agent's log lines since the request).
"""
import os
import random
import signal
import socket
import sys
import time


def main():
    pid, sock_path, log_path, when = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    max_ms, rnd = float(sys.argv[5]), random.Random(int(sys.argv[6]))
    apply_events = (sys.argv[7] if len(sys.argv) > 7 else "nft.apply").split(",")
    log = open(log_path, "rb")
    log.seek(0, os.SEEK_END)
    start = log.tell()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(b'{"cmd":"refresh"}\n')
    if when == "apply":
        seen, deadline = b"", time.monotonic() + 30
        while b"event=refresh.ok" not in seen:
            chunk = log.read()
            seen += chunk
            if b"event=refresh.failed" in seen or time.monotonic() > deadline:
                # Say what the agent did instead (a failed fetch, no refresh at all, a hang).
                what = b"refresh.failed" if b"event=refresh.failed" in seen else b"no refresh.ok within 30 s"
                tail = b" | ".join(seen.strip().splitlines()[-6:])
                print(f"{what.decode()}; agent log since the request: {tail.decode(errors='replace')}")
                return 1
            if not chunk:
                time.sleep(0.001)
    delay = rnd.uniform(0, max_ms)
    time.sleep(delay / 1000)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return 1
    s.close()
    # Dead (a zombie until its parent reaps it) before its log is read: a write in progress
    # when the signal came has then landed.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.001)
    log.seek(start)
    text = log.read()
    if b"event=refresh.ok" not in text:
        phase = "before_apply"
    elif not all(f"event={e} ".encode() in text for e in apply_events):
        phase = "in_apply"
    else:
        phase = "after_apply"
    print(phase, f"{delay:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
