# Helpers for the XDP enforcer e2e tests, on top of tests/e2e/lib.sh and the nftables tests'
# servers and probers (tests/e2e/nft/ok_server.py, prober.py).
#
# Topology (namespaces created here, removed by og_cleanup):
#   edge     198.51.100.10/24  2001:db8:cf::10/64   --veth ogxe--  origin 198.51.100.1  2001:db8:cf::1
#   attacker 203.0.113.66/24   2001:db8:bad::66/64  --veth ogxa--  origin 203.0.113.1   2001:db8:bad::1
#   origin also has ogxu (a veth to nowhere) running an unrelated XDP program (xdp-filter).
# The origin runs ok_server.py on PROTECTED_PORT (443) and OPEN_PORT (8080).
#
# Pins: the agent runs under `ip netns exec`, which remounts /sys, so /sys/fs/bpf would be a
# private bpffs that dies with each agent. The test mounts one bpffs of its own at
# $OG_TMP/bpffs instead ([xdp] pin_dir), in a mount namespace of its own (the script re-execs
# itself under unshare), so the pins outlive agent restarts and vanish with the test.
OG_XDP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${OG_XDP_PRIVATE_MOUNTS:-} && $(id -u) -eq 0 ]]; then
  OG_XDP_PRIVATE_MOUNTS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
# shellcheck source=../lib.sh
source "$OG_XDP_DIR/../lib.sh"
OG_NFT_DIR=$OG_XDP_DIR/../nft

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

xdp_netns() {
  local -n _xdp_ns_out=$1
  local ns="og-$2-$$"
  ip netns add "$ns"
  OG_NETNS+=("$ns")
  ip -n "$ns" link set lo up
  _xdp_ns_out=$ns
}

# xdp_pair ORIGIN_IF PEER_NS ORIGIN_ADDR4 PEER_ADDR4 ORIGIN_ADDR6 PEER_ADDR6
xdp_pair() {
  ip link add "$1" netns "$ORIGIN" type veth peer name peer0 netns "$2"
  ip -n "$ORIGIN" addr add "$3" dev "$1"
  ip -n "$2" addr add "$4" dev peer0
  ip -n "$ORIGIN" addr add "$5" dev "$1" nodad
  ip -n "$2" addr add "$6" dev peer0 nodad
  ip -n "$ORIGIN" link set "$1" up
  ip -n "$2" link set peer0 up
}

# xdp_topology NAME: ORIGIN, EDGE, ATTACKER namespaces, servers, the pins' bpffs.
xdp_topology() {
  xdp_netns ORIGIN "xdp-$1-o"
  xdp_netns EDGE "xdp-$1-e"
  xdp_netns ATTACKER "xdp-$1-a"
  xdp_pair ogxe "$EDGE" $ORIGIN_E4/24 $EDGE4/24 $ORIGIN_E6/64 $EDGE6/64
  xdp_pair ogxa "$ATTACKER" $ORIGIN_A4/24 $ATK4/24 $ORIGIN_A6/64 $ATK6/64
  ip -n "$ORIGIN" link add ogxu type veth peer name ogxv
  ip -n "$ORIGIN" link set ogxu up
  ip -n "$ORIGIN" link set ogxv up
  mkdir -p "$OG_TMP/bpffs"
  mount -t bpf bpf "$OG_TMP/bpffs"
  trap xdp_cleanup EXIT
  PIN_DIR=$OG_TMP/bpffs/originguard
  og_bg ip netns exec "$ORIGIN" python3 "$OG_NFT_DIR/ok_server.py" $PROTECTED_PORT $OPEN_PORT
  og_wait_for 10 ip netns exec "$EDGE" python3 "$OG_NFT_DIR/prober.py" once $ORIGIN_E4 $OPEN_PORT ||
    { og_log "test server did not start"; return 1; }
}

# The bpffs first (lazily: agents still running keep it until og_cleanup has killed them),
# or og_cleanup's rm -rf would fail on the mount point.
xdp_cleanup() {
  umount -l "$OG_TMP/bpffs" 2>/dev/null || true
  og_cleanup
}

# The unrelated program: xdp-filter (libxdp) in generic mode on ogxu; its own bpffs for libxdp.
foreign_load() {
  ip netns exec "$ORIGIN" sh -c 'mount -t bpf bpf /sys/fs/bpf && xdp-filter load ogxu --mode skb' >/dev/null 2>&1
}
# prog id of the XDP program on an origin interface ("" when none)
xdp_prog() { ip -n "$ORIGIN" -j link show "$1" | jq -r '.[0].xdp.prog.id // .[0].xdp.attached[0].prog.id // empty'; }

has_xdp() { [[ -n $(xdp_prog "$1") ]]; }
no_xdp() { [[ -z $(xdp_prog "$1") ]]; }

reach() { ip netns exec "$1" python3 "$OG_NFT_DIR/prober.py" once "$2" "$3" "${4:-1}"; }
blocked() { ! reach "$@"; }
nft_dropped() {
  ip netns exec "$ORIGIN" nft list counter inet originguard dropped 2>/dev/null | awk '$1 == "packets" {print $2}'
}
