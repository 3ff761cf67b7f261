#!/usr/bin/env python3
"""What the kernel holds in table inet originguard, as digests a test can compare exactly.

  nft -j list table inet originguard | nft_sets.py kernel
      prints "v4=<intervals>:<hash> v6=<intervals>:<hash> shape=<hash>"
  nft_sets.py ranges FILE.json
      prints "v4=<intervals>:<hash> v6=<intervals>:<hash>" for a Cloudflare API answer: the
      edge sets the agent builds from it, merged into intervals as the kernel's auto-merge does

The edge sets are compared as sorted, merged address intervals (whatever the kernel prints a
prefix or a range as), so "equal" means exactly the same addresses. `shape` covers everything
else that decides a verdict: table flags, chains (hook, priority, policy), rules, the other
sets with their elements; handles and counter values are left out.
"""
import hashlib
import json
import socket
import sys

# (inet_pton family, address bits); socket.inet_pton is ~20x faster than ipaddress here,
# which matters for 20000-element sets read after every kill.
FAMILY = {4: (socket.AF_INET, 32), 6: (socket.AF_INET6, 128)}


def addr(text, family):
    return int.from_bytes(socket.inet_pton(FAMILY[family][0], text), "big")


def prefix(text, length, family):
    bits = FAMILY[family][1]
    first = addr(text, family)
    if first & ((1 << (bits - length)) - 1):
        raise ValueError(f"{text}/{length} has host bits set")
    return first, first | ((1 << (bits - length)) - 1)


def interval(e, family):
    """One nft JSON set element as an (first, last) integer address pair."""
    if isinstance(e, dict) and "elem" in e:
        e = e["elem"]["val"]
    if isinstance(e, str):
        a = addr(e, family)
        return a, a
    if "prefix" in e:
        return prefix(e["prefix"]["addr"], int(e["prefix"]["len"]), family)
    if "range" in e:
        return addr(e["range"][0], family), addr(e["range"][1], family)
    raise ValueError(f"unknown set element {e!r}")


def merged(pairs):
    out = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


def digest(pairs):
    m = merged(pairs)
    h = hashlib.sha256("".join(f"{lo:x}-{hi:x}\n" for lo, hi in m).encode()).hexdigest()[:16]
    return f"{len(m)}:{h}"


def kernel(doc):
    edge = {"edge_v4": [], "edge_v6": []}
    shape = []
    for obj in doc.get("nftables", []):
        if "metainfo" in obj:
            continue
        (kind, body), = obj.items()
        body = {k: v for k, v in body.items() if k != "handle"}
        if kind == "set" and body["name"] in edge:
            fam = 4 if body["name"] == "edge_v4" else 6
            edge[body["name"]] = [interval(e, fam) for e in body.pop("elem", [])]
        if kind == "counter":
            body.pop("packets", None)
            body.pop("bytes", None)
        shape.append([kind, body])
    shape_h = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
    return f"v4={digest(edge['edge_v4'])} v6={digest(edge['edge_v6'])} shape={shape_h}"


def ranges(path):
    res = json.load(open(path))["result"]
    pairs = {4: [], 6: []}
    for key, fam in (("ipv4_cidrs", 4), ("ipv6_cidrs", 6)):
        for c in res.get(key, []):
            text, length = c.split("/")
            pairs[fam].append(prefix(text, int(length), fam))
    return f"v4={digest(pairs[4])} v6={digest(pairs[6])}"


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "kernel":
        print(kernel(json.load(sys.stdin)))
    elif len(sys.argv) == 3 and sys.argv[1] == "ranges":
        print(ranges(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
