#!/usr/bin/env bash
# Benchmark: replace the edge sets holding 22, 10,000 and 100,000 prefixes (v4+v6 mix):
# NftEnforcer (og-nft-apply, one netlink batch) against `nft -f` loading the equivalent
# transaction, in the same run, each in its own network namespace created here.
#
#   bench/nft/run.sh [BUILD_DIR] [REPS]      (root; prints a markdown table)
#
# Each measurement is one process run that replaces a set that is already loaded (A -> B ->
# A ...), so both sides pay for process start, input parsing and the kernel commit. Reported:
# median wall time and median peak RSS of the process (bench/nft/measure.py),
# plus the time inside apply() alone.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-${OG_BUILD:-$HERE/../../build}}
REPS=${2:-7}
APPLY=$BUILD/agent/nft/og-nft-apply
SIZES=${NFT_BENCH_SIZES:-"22 10000 100000"}
[[ $(id -u) -eq 0 ]] || { echo "bench/nft: needs root (network namespaces)" >&2; exit 77; }
[[ -x $APPLY ]] || { echo "bench/nft: build og-nft-apply first ($APPLY)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/og-nft-bench.XXXXXX)
NS_OURS=og-nft-bench-ours-$$
NS_NFT=og-nft-bench-nft-$$
cleanup() {
  ip netns del "$NS_OURS" 2>/dev/null || true
  ip netns del "$NS_NFT" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

printf '| prefixes (v4+v6) | originguard wall ms | originguard apply() ms | originguard peak RSS MiB | nft -f wall ms | nft -f peak RSS MiB | time ratio nft/og | RSS ratio nft/og |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for n in $SIZES; do
  ip netns add "$NS_OURS"
  ip netns add "$NS_NFT"
  python3 "$HERE/gen.py" prefixes "$n" 1 >"$TMP/a.txt"
  if [[ $n -eq 22 ]]; then
    # The real list twice would be a no-op replacement; B drops one prefix and adds another.
    { sed '$d' "$TMP/a.txt"; echo "192.0.2.0/24"; } >"$TMP/b.txt"
  else
    python3 "$HERE/gen.py" prefixes "$n" 2 >"$TMP/b.txt"
  fi
  python3 "$HERE/gen.py" nft-file "$TMP/a.txt" >"$TMP/a.nft"
  python3 "$HERE/gen.py" nft-file "$TMP/b.txt" >"$TMP/b.nft"

  ip netns exec "$NS_OURS" "$APPLY" --ranges "$TMP/a.txt" --quiet >/dev/null
  ip netns exec "$NS_NFT" nft -f "$TMP/a.nft"
  : >"$TMP/ours" ; : >"$TMP/nft"; : >"$TMP/inner"
  for ((r = 0; r < REPS; r++)); do
    f=b; ((r % 2)) && f=a
    # measured inside the namespace: `ip netns exec` itself is not timed
    ip netns exec "$NS_OURS" python3 "$HERE/measure.py" "$APPLY" --ranges "$TMP/$f.txt" --quiet >"$TMP/out"
    tail -1 "$TMP/out" >>"$TMP/ours"
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["total_ms"])' "$TMP/out" >>"$TMP/inner"
    ip netns exec "$NS_NFT" python3 "$HERE/measure.py" nft -f "$TMP/$f.nft" >>"$TMP/nft"
  done
  # sanity: both namespaces hold the same sets
  if ! diff <(ip netns exec "$NS_OURS" nft list set inet originguard edge_v4 | grep -v comment) \
            <(ip netns exec "$NS_NFT" nft list set inet originguard edge_v4 | grep -v comment) >/dev/null; then
    echo "bench/nft: WARNING: edge_v4 differs between originguard and nft for n=$n" >&2
  fi
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
