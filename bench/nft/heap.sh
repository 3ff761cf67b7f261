#!/usr/bin/env bash
# Heap profile of the agent daemon across the 100k-prefix refresh of bench/nft/run.sh
# (table 1): a fresh agent (nftables only) under heaptrack, its source switched from the 22
# real prefixes to set A, then to set B, each by `agentctl refresh`; one run, in a network
# namespace created (and deleted) here.
#
#   bench/nft/heap.sh [BUILD_DIR] [OUT]     (root; OUT default /tmp/og-agent-heap)
#
# NFT_HEAP_TRACK=0: no heaptrack, only the RSS figures of this one run (a quick check).
#
# Prints VmHWM during A -> B (reset by clear_refs as run.sh does; heaptrack's own pages
# count too, so this is not the bench figure), heaptrack's peak heap and the allocations
# alive at the peak (heaptrack_print --print-peaks). The recording stays in OUT.*.zst.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-${OG_BUILD:-$HERE/../../build}}
OUT=${2:-/tmp/og-agent-heap}
N=${NFT_BENCH_DAEMON_N:-100000}
[[ $(id -u) -eq 0 ]] || { echo "bench/nft/heap.sh: needs root (network namespaces)" >&2; exit 77; }
TRACK=${NFT_HEAP_TRACK:-1}
WRAP=()
if [[ $TRACK == 1 ]]; then
  command -v heaptrack >/dev/null || { echo "bench/nft/heap.sh: heaptrack missing" >&2; exit 1; }
  WRAP=(heaptrack -o "$OUT")
fi
OG_BUILD=$(cd "$BUILD" && pwd)
source "$HERE/../../tests/e2e/lib.sh"
PY=$OG_PYTHON
og_setup nftheap
TMP=$OG_TMP
NS=$(og_netns nh-agent)
RS=$TMP/rs
SOCK=$TMP/agent.sock
$PY "$HERE/gen.py" prefixes 22 1 >"$TMP/d22.txt"
$PY "$HERE/gen.py" prefixes "$N" 1 >"$TMP/dA.txt"
$PY "$HERE/gen.py" prefixes "$N" 2 >"$TMP/dB.txt"
for f in d22 dA dB; do $PY "$HERE/gen.py" json "$TMP/$f.txt" >"$TMP/$f.json"; done
og_range_server "$NS" "$RS"
echo good >"$RS/mode"
cat >"$TMP/agent.toml" <<TOML
[ranges]
sources = ["https://127.0.0.1:$RS_PORT/client/v4/ips"]
ca_file = "$RS/pki/ca.pem"
state_dir = "$TMP/state"
export_file = "$TMP/export/edge-ranges.json"
max_body_bytes = 4194304
[control]
socket = "$SOCK"
[nftables]
enabled = true
[xdp]
enabled = false
TOML
cp "$TMP/d22.json" "$RS/ranges.json"
rm -f "$OUT".*
ip netns exec "$NS" "${WRAP[@]}" "$AGENT" --config "$TMP/agent.toml" --foreground 2>>"$TMP/agent.log" &
hpid=$!
og_wait_for 60 "$CTL" -s "$SOCK" version || { echo "heap.sh: agent did not start" >&2; tail "$TMP/agent.log" >&2; exit 1; }
pid=$hpid
[[ $TRACK == 1 ]] && pid=$(pgrep -P "$hpid" -x originguard-age || pgrep -P "$hpid")
og_wait_for 60 $PY "$HERE/gen.py" check "$NS" "$TMP/d22.txt" 2>/dev/null
# Joins the start-up refresh (slow under heaptrack): switching to A while it runs would make
# A its result, applied before any verify had seen a clean table, and the next verify would
# dump 100k elements: a real path (docs/BENCHMARKS.md), but not the one measured here.
"$CTL" -s "$SOCK" refresh >/dev/null
cp "$TMP/dA.json" "$RS/ranges.json"
"$CTL" -s "$SOCK" refresh || { tail -5 "$TMP/agent.log" >&2; exit 1; }
$PY "$HERE/gen.py" check "$NS" "$TMP/dA.txt"
echo "after A: VmRSS $(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status") kB"
echo 5 >"/proc/$pid/clear_refs"
cp "$TMP/dB.json" "$RS/ranges.json"
"$CTL" -s "$SOCK" refresh || { tail -5 "$TMP/agent.log" >&2; exit 1; }
$PY "$HERE/gen.py" check "$NS" "$TMP/dB.txt"
echo "A -> B: VmHWM $(awk '$1 == "VmHWM:" {print $2}' "/proc/$pid/status") kB, after: VmRSS $(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status") kB ($([[ $TRACK == 1 ]] && echo "under heaptrack" || echo "no heaptrack"))"
kill "$pid"
wait "$hpid" 2>/dev/null || true
[[ $TRACK == 1 ]] || exit 0
f=$(ls "$OUT".* | head -1)
heaptrack_print -f "$f" --print-peaks 1 --print-allocators 0 --print-temporary 0 --print-leaks 0 -n 12 -s 0 2>/dev/null |
  sed -n '/PEAK MEMORY CONSUMERS/,$p' | head -150
heaptrack_print -f "$f" --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 0 2>/dev/null | tail -8
