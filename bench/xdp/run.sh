#!/usr/bin/env bash
# Benchmarks of the XDP enforcer (docs/BENCHMARKS.md "XDP enforcer"), in one run:
#   1. ns/packet through BPF_PROG_TEST_RUN: originguard with the 22 Cloudflare prefixes and
#      with 100k random prefixes, the plain-LPM variant, Debian's xdp-filter (xdpfilt_dny_ip.o),
#      an XDP_PASS baseline; medians and spread over REPS interleaved rounds;
#   2. time and memory of full 100k-prefix replacements through XdpEnforcer::apply();
#   3. receiver CPU per dropped frame, XDP against nftables, over a veth pair from a SYN
#      generator in another namespace.
#
#   bench/xdp/run.sh [BUILD_DIR]        (root; REPS, ROUNDS, SECONDS_PER_RUN, CPU override)
#
# Method of 3: the generator (og-xdp-bench flood) sends SYNs to port 443 from a
# non-Cloudflare source, valid checksums, 64 different source ports, like xdp-trafficgen does
# (whose Debian build fails on this kernel): BPF_PROG_TEST_RUN in live-frames mode runs a
# program that redirects each frame into the sending veth, so the receiving veth gets raw XDP
# frames, as a NIC driver does. Without an XDP program the veth builds an skb and hands it to
# the stack (GRO, IP, conntrack, routing, nftables' input hook, drop); with one, the program
# drops the frame before any skb exists. The receiving veth has GRO on and threaded NAPI, so
# all of that runs in its own kernel thread napi/<dev>-N, pinned to a CPU other than the
# generator's; its CPU time is read from /proc (plus that CPU's ksoftirqd, which stays about
# idle). Receiver CPU per dropped frame = that CPU time / the drop counter's increase (the XDP
# program's counter, or nftables' "dropped" counter): frames the receiver had no time for are
# not counted. The kernel here accounts CPU time by tick sampling (no IRQ_TIME_ACCOUNTING): a
# 4 s run is ~1000 samples. "XDP" (og-xdp-apply, native mode) and "nftables" (og-nft-apply, no
# XDP), both with the 22 Cloudflare prefixes, alternate for ROUNDS rounds.
set -euo pipefail
[[ -n ${BENCH_TRACE:-} ]] && set -x
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-${OG_BUILD:-$ROOT/build}}" && pwd)
REPS=${REPS:-9}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
SECTIONS=${SECTIONS:-"1 2 3"}
BENCH=$BUILD/bench/xdp/og-xdp-bench
XDP_APPLY=$BUILD/agent/xdp/og-xdp-apply
NFT_APPLY=$BUILD/agent/nft/og-nft-apply
[[ $(id -u) -eq 0 ]] || { echo "bench/xdp: needs root" >&2; exit 77; }
for b in "$BENCH" "$XDP_APPLY" "$NFT_APPLY"; do [[ -x $b ]] || { echo "bench/xdp: build $b first" >&2; exit 1; }; done
# Mounts below (the pins' bpffs) must vanish with the script: run in a private mount namespace.
if [[ -z ${OG_BENCH_PRIVATE:-} ]]; then
  OG_BENCH_PRIVATE=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

TMP=$(mktemp -d /tmp/og-xdp-bench.XXXXXX)
GEN=og-xdp-bench-gen-$$
RECV=og-xdp-bench-recv-$$
cleanup() {
  ip netns del "$GEN" 2>/dev/null || true
  ip netns del "$RECV" 2>/dev/null || true
  umount "$TMP/bpffs" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
spread() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s-%s", lo, hi}'; }

if [[ $SECTIONS == *1* ]]; then
  echo "## 1. ns/packet (BPF_PROG_TEST_RUN, $REPS rounds)"
  echo
  "$BENCH" ns --snapshot "$ROOT/agent/data/cloudflare-ips-v4v6.json" --reps "$REPS"
  echo
fi
if [[ $SECTIONS == *2* ]]; then
  echo "## 2. Full replacement (XdpEnforcer::apply on a veth, private namespaces)"
  echo
  for n in 22 100000; do "$BENCH" replace --prefixes "$n" --rounds 9; done
  echo
fi
[[ $SECTIONS == *3* ]] || exit 0
echo "## 3. Receiver CPU per dropped frame (SYN flood over a veth, $ROUNDS rounds of ${SECONDS_PER_RUN}s)"
echo
mkdir -p "$TMP/bpffs"
mount -t bpf bpf "$TMP/bpffs"
ip netns add "$GEN"
ip netns add "$RECV"
ip link add ogxg netns "$GEN" type veth peer name ogxr netns "$RECV"
ip -n "$GEN" addr add 203.0.113.66/24 dev ogxg
ip -n "$RECV" addr add 203.0.113.1/24 dev ogxr
ip -n "$GEN" link set ogxg up
ip -n "$RECV" link set ogxr up
ip -n "$RECV" link set lo up
MAC=$(ip -n "$RECV" -j link show ogxr | jq -r '.[0].address')
jq -r '.result.ipv4_cidrs[], .result.ipv6_cidrs[]' "$ROOT/agent/data/cloudflare-ips-v4v6.json" >"$TMP/cf.txt"
# The generator on the first CPU this script may use, the receiver on the second.
mapfile -t CPUS < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
((${#CPUS[@]} >= 2)) || { echo "bench/xdp: section 3 needs two CPUs" >&2; exit 1; }
SEND_CPU=${SEND_CPU:-${CPUS[0]}}
RECV_CPU=${RECV_CPU:-${CPUS[1]}}
HZ=$(getconf CLK_TCK)
ip netns exec "$RECV" ethtool -K ogxr gro on >/dev/null  # NAPI on the receiver even without XDP
ip netns exec "$RECV" sh -c 'echo 1 >/sys/class/net/ogxr/threaded'

# CPU ticks of the receiver: the veth's NAPI thread(s) and the receiving CPU's ksoftirqd.
receiver_ticks() {
  local total=0 pid
  for pid in $(pgrep '^napi/ogxr-') $(pgrep -x "ksoftirqd/$RECV_CPU"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
pin_napi() { local pid; for pid in $(pgrep '^napi/ogxr-'); do taskset -pc "$RECV_CPU" "$pid" >/dev/null; done; }
xdp_drops() { ip netns exec "$RECV" "$XDP_APPLY" --counters --quiet --pin-dir "$TMP/bpffs/og" | jq '."ipv4/dropped"'; }
nft_drops() { ip netns exec "$RECV" nft list counter inet originguard dropped | awk '$1 == "packets" {print $2}'; }

setup() {
  case $1 in
    xdp)
      ip netns exec "$RECV" "$XDP_APPLY" --ranges "$TMP/cf.txt" --ports 443 --interfaces ogxr --xdp-mode native \
        --pin-dir "$TMP/bpffs/og" --quiet ;;
    nft)
      ip netns exec "$RECV" "$NFT_APPLY" --ranges "$TMP/cf.txt" --ports 443 --quiet >/dev/null ;;
  esac
  pin_napi  # attaching XDP re-creates the NAPI thread
}
teardown() {
  case $1 in
    xdp) ip netns exec "$RECV" "$XDP_APPLY" --uninstall --interfaces ogxr --pin-dir "$TMP/bpffs/og" --quiet >/dev/null ;;
    nft) ip netns exec "$RECV" "$NFT_APPLY" --uninstall --quiet >/dev/null ;;
  esac
}

for cfg in xdp nft; do : >"$TMP/$cfg.ns"; done
for ((r = 0; r < ROUNDS; r++)); do
  for cfg in xdp nft; do
    setup "$cfg"
    if [[ $cfg == xdp ]]; then d0=$(xdp_drops); else d0=$(nft_drops); fi
    t0=$(receiver_ticks)
    out=$(ip netns exec "$GEN" taskset -c "$SEND_CPU" "$BENCH" flood --ifname ogxg --dst-mac "$MAC" \
      --seconds "$SECONDS_PER_RUN")
    sleep 0.2  # the receiver finishes what is queued
    t1=$(receiver_ticks)
    if [[ $cfg == xdp ]]; then d1=$(xdp_drops); else d1=$(nft_drops); fi
    teardown "$cfg"
    sent=$(jq -r .sent <<<"$out")
    dropped=$((d1 - d0))
    ((dropped > 0)) || { echo "bench/xdp: $cfg dropped nothing" >&2; exit 1; }
    ns=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$dropped" 'BEGIN {printf "%.1f", t * 1e9 / hz / n}')
    echo "$ns" >>"$TMP/$cfg.ns"
    printf '  round %d %-4s sent %9d, dropped %9d (%3.0f%%), receiver %4d ticks: %7.1f ns/dropped frame\n' \
      "$r" "$cfg" "$sent" "$dropped" "$(awk -v d="$dropped" -v s="$sent" 'BEGIN{print 100*d/s}')" $((t1 - t0)) "$ns" >&2
  done
done
x=$(median <"$TMP/xdp.ns")
n=$(median <"$TMP/nft.ns")
printf '| receiver drops | CPU ns per dropped frame, median (min-max) |\n|---|---:|\n'
printf '| XDP (native, 22 prefixes) | %s (%s) |\n' "$x" "$(spread <"$TMP/xdp.ns")"
printf '| nftables (input hook, 22 prefixes) | %s (%s) |\n' "$n" "$(spread <"$TMP/nft.ns")"
awk -v x="$x" -v n="$n" 'BEGIN {printf "\nreceiver CPU per dropped frame, nftables / XDP: %.2fx (target >= 5x)\n", n / x}'
