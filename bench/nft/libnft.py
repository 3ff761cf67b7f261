#!/usr/bin/env python3
"""libnft.py FILE: loads an nft script through libnftables in-process (python3-nftables,
Nftables().cmd()), as a long-running daemon such as firewalld does. Prints one line
"<ms inside cmd()> <VmRSS KiB before cmd()>"; the process's peak RSS is measured outside
(bench/nft/measure.py)."""
import sys
import time

import nftables


def vmrss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


text = open(sys.argv[1]).read()
nft = nftables.Nftables()
before = vmrss()
t0 = time.perf_counter()
rc, _, err = nft.cmd(text)
ms = (time.perf_counter() - t0) * 1000
if rc != 0:
    sys.exit(f"libnft.py: cmd() failed: {err.strip()}")
print(f"{ms:.2f} {before}")
