#!/usr/bin/env python3
"""Generates benchmark inputs for bench/nft/run.sh.

  gen.py prefixes N SEED            N prefixes, 3/4 IPv4 /24 and 1/4 IPv6 /48, never adjacent
                                    (so no tool merges them and element counts match);
                                    N == 22 gives the real Cloudflare list
  gen.py nft-file PREFIXES_FILE     the nft -f input equivalent to one NftEnforcer apply:
                                    declare what may be missing, flush the chains and sets,
                                    add the rules and all elements, as one transaction
  gen.py json PREFIXES_FILE         the same prefixes as a Cloudflare API answer (/ips), which
                                    tests/tools/range_server.py serves to the agent
  gen.py check NS PREFIXES_FILE     exit 1 unless table inet originguard in network namespace
                                    NS holds exactly these prefixes in edge_v4 and edge_v6
                                    (read with `nft -j list set`)
"""
import ipaddress
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def prefixes(n, seed):
    if n == 22:
        with open(os.path.join(HERE, "../../agent/data/cloudflare-ips-v4v6.json")) as f:
            r = json.load(f)["result"]
        return r["ipv4_cidrs"] + r["ipv6_cidrs"]
    rnd = random.Random(seed)
    seen, out = set(), []
    n4 = n * 3 // 4
    while len(out) < n4:
        p = f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(0, 256, 2)}.0/24"
        if p not in seen:
            seen.add(p)
            out.append(p)
    while len(out) < n:
        p = f"{rnd.randrange(0x2400, 0x2c00):x}:{rnd.randrange(0x10000):x}:{rnd.randrange(0, 0x10000, 2):x}::/48"
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


NFT_HEAD = """table inet originguard {
  counter audit_would_drop { }
  counter dropped { }
  set edge_v4 { type ipv4_addr; flags interval; auto-merge; }
  set edge_v6 { type ipv6_addr; flags interval; auto-merge; }
  set mgmt_v4 { type ipv4_addr; flags interval; auto-merge; }
  set mgmt_v6 { type ipv6_addr; flags interval; auto-merge; }
  set ports { type inet_service; }
  chain input { type filter hook input priority filter - 10; policy accept; }
  chain protected { }
}
flush chain inet originguard input
flush chain inet originguard protected
flush set inet originguard edge_v4
flush set inet originguard edge_v6
flush set inet originguard mgmt_v4
flush set inet originguard mgmt_v6
flush set inet originguard ports
add rule inet originguard input ct state established,related accept comment "replies and established connections"
add rule inet originguard input iif "lo" accept comment "loopback"
add rule inet originguard input meta l4proto tcp th dport @ports jump protected comment "TCP to a protected port: check the source"
add rule inet originguard input meta l4proto udp th dport @ports jump protected comment "UDP to a protected port: check the source"
add rule inet originguard protected ip saddr @mgmt_v4 accept comment "management allow-list (IPv4)"
add rule inet originguard protected ip6 saddr @mgmt_v6 accept comment "management allow-list (IPv6)"
add rule inet originguard protected ip saddr @edge_v4 accept comment "Cloudflare edge (IPv4)"
add rule inet originguard protected ip6 saddr @edge_v6 accept comment "Cloudflare edge (IPv6)"
add rule inet originguard protected counter name "dropped" drop comment "enforce: not edge, not management: drop"
add element inet originguard ports { 80, 443 }
"""


def nft_file(path):
    with open(path) as f:
        ps = [l.strip() for l in f if l.strip()]
    v4 = [p for p in ps if ":" not in p]
    v6 = [p for p in ps if ":" in p]
    out = [NFT_HEAD]
    for name, items in (("edge_v4", v4), ("edge_v6", v6)):
        if items:
            out.append(f"add element inet originguard {name} {{ " + ", ".join(items) + " }\n")
    return "".join(out)


def api_json(path):
    with open(path) as f:
        ps = [l.strip() for l in f if l.strip()]
    return json.dumps({"result": {"ipv4_cidrs": [p for p in ps if ":" not in p],
                                  "ipv6_cidrs": [p for p in ps if ":" in p]},
                       "success": True, "errors": [], "messages": []})


def kernel_set(ns, name):
    """The elements of one set as networks; ranges are split into the prefixes they cover."""
    out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet",
                          "originguard", name], capture_output=True, text=True, check=True).stdout
    nets = set()
    for obj in json.loads(out)["nftables"]:
        for e in obj.get("set", {}).get("elem", []):
            e = e.get("elem", {}).get("val", e) if isinstance(e, dict) and "elem" in e else e
            if isinstance(e, str):
                nets.add(ipaddress.ip_network(e))
            elif "prefix" in e:
                nets.add(ipaddress.ip_network(f"{e['prefix']['addr']}/{e['prefix']['len']}"))
            elif "range" in e:
                lo, hi = (ipaddress.ip_address(a) for a in e["range"])
                nets.update(ipaddress.summarize_address_range(lo, hi))
            else:
                raise SystemExit(f"gen.py check: unknown element {e!r}")
    return nets


def check(ns, path):
    with open(path) as f:
        want = {ipaddress.ip_network(l.strip()) for l in f if l.strip()}
    bad = []
    for name, version in (("edge_v4", 4), ("edge_v6", 6)):
        exp = {n for n in want if n.version == version}
        got = kernel_set(ns, name)
        if got != exp:
            bad.append(f"{name}: {len(got)} elements, expected {len(exp)}; "
                       f"missing {len(exp - got)}, unexpected {len(got - exp)}")
    if bad:
        raise SystemExit(f"gen.py check {ns} {path}: MISMATCH: " + "; ".join(bad))


def main():
    if sys.argv[1] == "prefixes":
        print("\n".join(prefixes(int(sys.argv[2]), int(sys.argv[3]))))
    elif sys.argv[1] == "json":
        print(api_json(sys.argv[2]))
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "nft-file":
        sys.stdout.write(nft_file(sys.argv[2]))
    else:
        sys.exit(64)


if __name__ == "__main__":
    main()
