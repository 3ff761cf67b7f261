# Helpers for the nftables enforcer e2e tests, on top of tests/e2e/lib.sh.
#
# Topology (all namespaces created here, removed by og_cleanup):
#   edge     198.51.100.10/24  2001:db8:cf::10/64   --veth--  origin 198.51.100.1  2001:db8:cf::1
#   attacker 203.0.113.66/24   2001:db8:bad::66/64  --veth--  origin 203.0.113.1   2001:db8:bad::1
# The origin runs ok_server.py on PROTECTED_PORT (443) and OPEN_PORT (8080).
OG_NFT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "$OG_NFT_DIR/../lib.sh"

NFT_APPLY=${NFT_APPLY:-$OG_BUILD/agent/nft/og-nft-apply}
PROTECTED_PORT=443
OPEN_PORT=8080
EDGE4=198.51.100.10
EDGE6=2001:db8:cf::10
ATK4=203.0.113.66
ATK6=2001:db8:bad::66
ORIGIN_E4=198.51.100.1
ORIGIN_E6=2001:db8:cf::1
ORIGIN_A4=203.0.113.1
ORIGIN_A6=2001:db8:bad::1

# nft_netns VAR NAME: creates namespace og-NAME-<pid> (lo up), registers it for og_cleanup
# in this shell, and stores its name in VAR.
nft_netns() {
  local -n _nft_ns_out=$1
  local ns="og-$2-$$"
  ip netns add "$ns"
  OG_NETNS+=("$ns")
  ip -n "$ns" link set lo up
  _nft_ns_out=$ns
}

# nft_topology NAME: sets ORIGIN EDGE ATTACKER namespaces, starts the servers.
nft_topology() {
  [[ -x $NFT_APPLY ]] || { og_log "missing $NFT_APPLY"; exit 1; }
  # Not $(og_netns ...): a command substitution is a subshell, so its OG_NETNS+= would be
  # lost and og_cleanup would leave the namespaces behind.
  nft_netns ORIGIN "nft-$1-o"
  nft_netns EDGE "nft-$1-e"
  nft_netns ATTACKER "nft-$1-a"
  og_veth "$ORIGIN" $ORIGIN_E4/24 "$EDGE" $EDGE4/24 $ORIGIN_E6/64 $EDGE6/64 >/dev/null
  og_veth "$ORIGIN" $ORIGIN_A4/24 "$ATTACKER" $ATK4/24 $ORIGIN_A6/64 $ATK6/64 >/dev/null
  og_bg ip netns exec "$ORIGIN" python3 "$OG_NFT_DIR/ok_server.py" $PROTECTED_PORT $OPEN_PORT
  og_wait_for 10 ip netns exec "$EDGE" python3 "$OG_NFT_DIR/prober.py" once $ORIGIN_E4 $OPEN_PORT ||
    { og_log "test server did not start"; return 1; }
  printf '198.51.100.0/24\n2001:db8:cf::/48\n' >"$OG_TMP/edge.txt"
}

# reach NS HOST PORT [TIMEOUT]: exit 0 when the origin answered.
reach() { ip netns exec "$1" python3 "$OG_NFT_DIR/prober.py" once "$2" "$3" "${4:-1}"; }
blocked() { ! reach "$@"; }

# nft_apply ARGS...: og-nft-apply inside the origin namespace.
nft_apply() { ip netns exec "$ORIGIN" "$NFT_APPLY" "$@"; }
nft_origin() { ip netns exec "$ORIGIN" nft "$@"; }

# counter_packets NAME: packets of a named counter in table inet originguard.
counter_packets() {
  nft_origin list counter inet originguard "$1" | awk '$1 == "packets" {print $2}'
}

# gen_prefixes N SEED: N random IPv4 /24 and IPv6 /48 prefixes (3:1), never covering the
# test addresses (198.51.100/24, 203.0.113/24, 2001:db8::/32).
gen_prefixes() {
  python3 - "$1" "$2" <<'PY'
import random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
seen = set()
out = []
while len(out) < n:
    if r.random() < 0.75:
        a, b, c = r.randrange(1, 224), r.randrange(256), r.randrange(256)
        if a in (10, 127, 198, 203):
            continue
        p = f"{a}.{b}.{c}.0/24"
    else:
        x, y = r.randrange(0x2400, 0x2c00), r.randrange(0x10000)
        p = f"{x:x}:{y:x}:{r.randrange(0x10000):x}::/48"
    if p not in seen:
        seen.add(p)
        out.append(p)
print("\n".join(out))
PY
}
