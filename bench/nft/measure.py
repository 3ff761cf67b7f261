#!/usr/bin/env python3
"""measure.py CMD...: runs CMD once under GNU time; after CMD's own output, prints one line
"<wall ms> <peak RSS KiB>".

Wall time comes from a monotonic clock here (GNU time's %e has 10 ms steps); peak RSS from
GNU time (%M), which is exec'd small, unlike this Python process whose pages a forked
child would otherwise be charged for."""
import os
import subprocess
import sys
import tempfile
import time

with tempfile.NamedTemporaryFile("r") as out:
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name] + sys.argv[1:])
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit(f"measure.py: {sys.argv[1:]} failed")
    rss = out.read().strip().splitlines()[-1]
print(f"{ms:.2f} {rss}")
