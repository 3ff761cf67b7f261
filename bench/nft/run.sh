#!/usr/bin/env bash
# Benchmark of nftables set replacement, in network namespaces created (and deleted) here;
# nothing touches the host's ruleset. Prints two markdown tables.
#
#   bench/nft/run.sh [BUILD_DIR] [REPS]      (root; REPS default 9, as docs/BENCHMARKS.md)
#
# 1. The agent daemon itself (NFT_BENCH_DAEMON_N prefixes, default 100,000): each run starts
#    a fresh originguard-agent (nftables enforcer only, [xdp] enabled = false) whose source
#    is a local HTTPS range server (tests/tools/range_server.py) serving the 22 real
#    Cloudflare prefixes; then the source switches to set A (`agentctl refresh`, not timed)
#    and to set B (timed: `agentctl refresh` returns after apply + verify + export +
#    persist, i.e. refresh-to-enforced). RSS: VmRSS at idle (22 prefixes), VmHWM during the
#    A -> B refresh (reset first by writing 5 to /proc/PID/clear_refs; where the kernel
#    refuses that, the cumulative peak since start, flagged in the table), VmRSS after.
#    The same A -> B change is made by `nft -f B.nft` (one process) and by libnftables
#    in-process (python3-nftables, Nftables().cmd(): the firewalld model), each in its own
#    namespace with A loaded first.
# 2. NftEnforcer (og-nft-apply, one netlink batch) against `nft -f` loading the equivalent
#    transaction at 22, 10,000 and 100,000 prefixes (NFT_BENCH_SIZES).
#
# After every run of part 1, and after the last run of each size in part 2, every namespace
# must hold exactly the expected prefixes in edge_v4 and edge_v6 (`nft -j list set`,
# bench/nft/gen.py check); any mismatch stops the script with exit 1.
# NFT_BENCH_PARTS="daemon table" selects the parts.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-${OG_BUILD:-$HERE/../../build}}
REPS=${2:-9}
APPLY=$BUILD/agent/nft/og-nft-apply
SIZES=${NFT_BENCH_SIZES:-"22 10000 100000"}
DAEMON_N=${NFT_BENCH_DAEMON_N:-100000}
PARTS=${NFT_BENCH_PARTS:-"daemon table"}
[[ $(id -u) -eq 0 ]] || { echo "bench/nft: needs root (network namespaces)" >&2; exit 77; }
for f in "$APPLY" "$BUILD/originguard-agent" "$BUILD/agentctl"; do
  [[ -x $f ]] || { echo "bench/nft: build it first: $f" >&2; exit 1; }
done
OG_BUILD=$(cd "$BUILD" && pwd)
# namespaces og-*-$$, PIDs started by og_bg and $OG_TMP go in og_cleanup (trap on EXIT)
source "$HERE/../../tests/e2e/lib.sh"
PY=$OG_PYTHON
$PY -c 'import nftables' 2>/dev/null || { echo "bench/nft: python3-nftables missing (scripts/install-deps.sh)" >&2; exit 1; }
og_setup nftbench
TMP=$OG_TMP

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# "median (min–max)" of a column of numbers, scaled by $2 (default 1)
spread() { sort -g | awk -v s="${2:-1}" -v f="$1" '{a[NR]=$1*s} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2;
  printf f " (" f "–" f ")", m, a[1], a[NR]}'; }
check() { $PY "$HERE/gen.py" check "$@" || { echo "bench/nft: FAIL: kernel state differs (above)" >&2; exit 1; }; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

daemon_part() {
  local NS_AG NS_NFT NS_LIB RS SOCK n=$DAEMON_N r pid hwm_reset=yes
  NS_AG=$(og_netns nb-agent); NS_NFT=$(og_netns nb-nft); NS_LIB=$(og_netns nb-lib)
  RS=$TMP/rs; SOCK=$TMP/agent.sock
  $PY "$HERE/gen.py" prefixes 22 1 >"$TMP/d22.txt"
  $PY "$HERE/gen.py" prefixes "$n" 1 >"$TMP/dA.txt"
  $PY "$HERE/gen.py" prefixes "$n" 2 >"$TMP/dB.txt"
  for f in d22 dA dB; do $PY "$HERE/gen.py" json "$TMP/$f.txt" >"$TMP/$f.json"; done
  for f in dA dB; do $PY "$HERE/gen.py" nft-file "$TMP/$f.txt" >"$TMP/$f.nft"; done
  og_range_server "$NS_AG" "$RS"
  echo good >"$RS/mode"
  cat >"$TMP/agent.toml" <<TOML
[ranges]
sources = ["https://127.0.0.1:$RS_PORT/client/v4/ips"]
ca_file = "$RS/pki/ca.pem"
state_dir = "$TMP/state"
export_file = "$TMP/export/edge-ranges.json"
# the 100k answer is ~2 MB; the default 1 MiB cap would refuse it
max_body_bytes = 4194304
[control]
socket = "$SOCK"
[nftables]
enabled = true
[xdp]
enabled = false
TOML
  : >"$TMP/ag"; : >"$TMP/nft"; : >"$TMP/lib"; : >"$TMP/libin"
  for ((r = 0; r < REPS; r++)); do
    # --- the agent: fresh daemon, no persisted state, 22 prefixes, then A, then B (timed)
    rm -rf "$TMP/state" "$TMP/export"
    cp "$TMP/d22.json" "$RS/ranges.json"
    ip netns exec "$NS_AG" "$AGENT" --config "$TMP/agent.toml" --foreground 2>>"$TMP/agent.log" &
    pid=$!
    og_wait_for 20 "$CTL" -s "$SOCK" version || { echo "bench/nft: agent did not start" >&2; tail "$TMP/agent.log" >&2; exit 1; }
    og_wait_for 20 $PY "$HERE/gen.py" check "$NS_AG" "$TMP/d22.txt" 2>/dev/null || check "$NS_AG" "$TMP/d22.txt"
    local idle; idle=$(status_kib "$pid" VmRSS)
    cp "$TMP/dA.json" "$RS/ranges.json"
    "$CTL" -s "$SOCK" refresh >/dev/null
    check "$NS_AG" "$TMP/dA.txt"
    # resets VmHWM to the current RSS (Linux >= 4.0); the redirection's own error is silenced
    { echo 5 >"/proc/$pid/clear_refs"; } 2>/dev/null || hwm_reset=no
    cp "$TMP/dB.json" "$RS/ranges.json"
    local ms; ms=$($PY "$HERE/measure.py" "$CTL" -s "$SOCK" refresh | tail -1 | awk '{print $1}')
    echo "$ms $idle $(status_kib "$pid" VmHWM) $(status_kib "$pid" VmRSS)" >>"$TMP/ag"
    check "$NS_AG" "$TMP/dB.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    ip netns exec "$NS_AG" nft delete table inet originguard 2>/dev/null || true
    # --- nft -f: A loaded, then B (timed)
    ip netns exec "$NS_NFT" nft -f "$TMP/dA.nft"
    ip netns exec "$NS_NFT" $PY "$HERE/measure.py" nft -f "$TMP/dB.nft" >>"$TMP/nft"
    check "$NS_NFT" "$TMP/dB.txt"
    # --- libnftables in-process: A loaded, then B (timed)
    ip netns exec "$NS_LIB" nft -f "$TMP/dA.nft"
    ip netns exec "$NS_LIB" $PY "$HERE/measure.py" $PY "$HERE/libnft.py" "$TMP/dB.nft" >"$TMP/out"
    tail -1 "$TMP/out" >>"$TMP/lib"; head -1 "$TMP/out" >>"$TMP/libin"
    check "$NS_LIB" "$TMP/dB.txt"
  done
  local peak_label="peak RSS during the change, MiB"
  [[ $hwm_reset == yes ]] || peak_label="peak RSS since start (VmHWM; clear_refs unsupported, not reset), MiB"
  echo
  echo "Agent daemon vs nft -f vs libnftables, replacing a loaded $n-prefix set by another (v4+v6), $REPS runs: median (min–max)"
  echo
  printf '| measure | originguard-agent (`agentctl refresh`) | `nft -f` (one process) | libnftables in-process (python3-nftables) |\n'
  printf '|---|---:|---:|---:|\n'
  printf '| time to enforce B, ms: agent = refresh-to-enforced (fetch + apply + verify + export + persist); nft = process wall; libnftables = inside cmd() | %s | %s | %s |\n' \
    "$(awk '{print $1}' "$TMP/ag" | spread %.0f)" "$(awk '{print $1}' "$TMP/nft" | spread %.0f)" "$(awk '{print $1}' "$TMP/libin" | spread %.0f)"
  printf '| libnftables process wall (Python start + import + cmd()), ms | — | — | %s |\n' "$(awk '{print $1}' "$TMP/lib" | spread %.0f)"
  printf '| %s: agent VmHWM; others the process peak (GNU time %%M; libnftables includes the Python interpreter) | %s | %s | %s |\n' "$peak_label" \
    "$(awk '{print $3}' "$TMP/ag" | spread %.1f 0.0009765625)" "$(awk '{print $2}' "$TMP/nft" | spread %.1f 0.0009765625)" "$(awk '{print $2}' "$TMP/lib" | spread %.1f 0.0009765625)"
  printf '| RSS before, MiB: agent idle with the 22 real prefixes (VmRSS); libnftables = Python + libnftables loaded, before cmd() | %s | — | %s |\n' \
    "$(awk '{print $2}' "$TMP/ag" | spread %.1f 0.0009765625)" "$(awk '{print $2}' "$TMP/libin" | spread %.1f 0.0009765625)"
  printf '| RSS after the change, MiB: agent VmRSS once `agentctl refresh` returned (the processes of the other two exit) | %s | — | — |\n' \
    "$(awk '{print $4}' "$TMP/ag" | spread %.1f 0.0009765625)"
  echo
}

table_part() {
  local n r f NS_OURS NS_NFT
  echo "og-nft-apply (the agent's enforcer as a one-shot process) vs nft -f, $REPS runs: medians"
  echo
  printf '| prefixes (v4+v6) | originguard wall ms | originguard apply() ms | originguard peak RSS MiB | nft -f wall ms | nft -f peak RSS MiB | time ratio nft/og | RSS ratio nft/og |\n'
  printf '|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for n in $SIZES; do
    NS_OURS=$(og_netns nb-ours-$n); NS_NFT=$(og_netns nb-nftf-$n)
    $PY "$HERE/gen.py" prefixes "$n" 1 >"$TMP/a.txt"
    if [[ $n -eq 22 ]]; then
      # The real list twice would be a no-op replacement; B drops one prefix and adds another.
      { sed '$d' "$TMP/a.txt"; echo "192.0.2.0/24"; } >"$TMP/b.txt"
    else
      $PY "$HERE/gen.py" prefixes "$n" 2 >"$TMP/b.txt"
    fi
    $PY "$HERE/gen.py" nft-file "$TMP/a.txt" >"$TMP/a.nft"
    $PY "$HERE/gen.py" nft-file "$TMP/b.txt" >"$TMP/b.nft"

    ip netns exec "$NS_OURS" "$APPLY" --ranges "$TMP/a.txt" --quiet >/dev/null
    ip netns exec "$NS_NFT" nft -f "$TMP/a.nft"
    : >"$TMP/ours"; : >"$TMP/nft"; : >"$TMP/inner"
    for ((r = 0; r < REPS; r++)); do
      f=b; ((r % 2)) && f=a
      # measured inside the namespace: `ip netns exec` itself is not timed
      ip netns exec "$NS_OURS" $PY "$HERE/measure.py" "$APPLY" --ranges "$TMP/$f.txt" --quiet >"$TMP/out"
      tail -1 "$TMP/out" >>"$TMP/ours"
      $PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["total_ms"])' "$TMP/out" >>"$TMP/inner"
      ip netns exec "$NS_NFT" $PY "$HERE/measure.py" nft -f "$TMP/$f.nft" >>"$TMP/nft"
    done
    # both namespaces hold exactly the last list written, in both families
    check "$NS_OURS" "$TMP/$f.txt"
    check "$NS_NFT" "$TMP/$f.txt"
    local ow orss oin nw nrss
    ow=$(awk '{print $1}' "$TMP/ours" | median)
    orss=$(awk '{print $2/1024}' "$TMP/ours" | median)
    oin=$(median <"$TMP/inner")
    nw=$(awk '{print $1}' "$TMP/nft" | median)
    nrss=$(awk '{print $2/1024}' "$TMP/nft" | median)
    awk -v n="$n" -v ow="$ow" -v oin="$oin" -v orss="$orss" -v nw="$nw" -v nrss="$nrss" \
      'BEGIN { printf "| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx | %.2fx |\n",
               n, ow, oin, orss, nw, nrss, (ow > 0 ? nw / ow : 0), (orss > 0 ? nrss / orss : 0) }'
    ip netns del "$NS_OURS"
    ip netns del "$NS_NFT"
  done
}

for p in $PARTS; do
  case $p in
    daemon) daemon_part ;;
    table) table_part ;;
    *) echo "bench/nft: unknown part $p" >&2; exit 64 ;;
  esac
done
