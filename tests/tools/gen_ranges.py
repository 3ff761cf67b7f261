#!/usr/bin/env python3
"""gen_ranges.py N SEED OUT: a Cloudflare API answer with N random prefixes (IPv4 /24 and
IPv6 /48, 3:1), the same for the same SEED, never covering the test addresses (10/8, 127/8,
198/8, 203/8, 2001:db8::/32). Its etag is "gen-SEED", so a test can tell which set it holds."""
import json
import os
import random
import sys


def main():
    n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    r = random.Random(seed)
    seen, v4, v6 = set(), [], []
    while len(v4) + len(v6) < n:
        if r.random() < 0.75:
            a, b, c = r.randrange(1, 224), r.randrange(256), r.randrange(256)
            if a in (10, 127, 198, 203):
                continue
            p, dest = f"{a}.{b}.{c}.0/24", v4
        else:
            x, y, z = r.randrange(0x2400, 0x2c00), r.randrange(0x10000), r.randrange(0x10000)
            p, dest = f"{x:x}:{y:x}:{z:x}::/48", v6
        if p not in seen:
            seen.add(p)
            dest.append(p)
    doc = {"result": {"ipv4_cidrs": v4, "ipv6_cidrs": v6, "etag": f"gen-{seed}"},
           "success": True, "errors": [], "messages": []}
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f)
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
