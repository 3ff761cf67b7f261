#!/usr/bin/env bash
# Zero wrong verdicts under churn: while the edge host keeps opening connections (IPv4 and
# IPv6) and the attacker keeps probing, the edge sets are replaced 1000 times, alternating two
# range sets of ~5000 prefixes that both contain the edge host. No edge connection may fail
# and no attacker connection may succeed: each replacement is one atomic transaction.
source "$(dirname "$0")/lib_nft.sh"
og_setup nft-churn
nft_topology churn
COUNT=${NFT_CHURN_COUNT:-1000}

{ cat "$OG_TMP/edge.txt"; gen_prefixes 5000 1; } >"$OG_TMP/a.txt"
{ cat "$OG_TMP/edge.txt"; gen_prefixes 5000 2; } >"$OG_TMP/b.txt"
nft_apply --ranges "$OG_TMP/a.txt" --ports $PROTECTED_PORT --quiet >/dev/null || og_fail "initial apply"
og_check "edge reaches before churn" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
# What a reader of the set sees: the element count of A, later of B, and nothing else.
# (The reader is og-nft-apply --sample-set, which retries dumps that a commit interrupted;
# `nft list set` does not, so under churn it can print a mix of two generations.)
set_count() { nft_apply --sample-set edge_v6 | python3 -c 'import json,sys; print(list(json.load(sys.stdin)["counts"])[0])'; }
count_a=$(set_count)
nft_apply --ranges "$OG_TMP/b.txt" --ports $PROTECTED_PORT --quiet >/dev/null || og_fail "apply b"
count_b=$(set_count)
nft_apply --ranges "$OG_TMP/a.txt" --ports $PROTECTED_PORT --quiet >/dev/null || og_fail "apply a"

stop="$OG_TMP/stop"
for i in 1 2; do
  og_bg ip netns exec "$EDGE" python3 "$OG_NFT_DIR/prober.py" loop "$stop" $PROTECTED_PORT 2 \
    $ORIGIN_E4 $ORIGIN_E6 >"$OG_TMP/edge$i.json"
done
for i in 1 2; do
  og_bg ip netns exec "$ATTACKER" python3 "$OG_NFT_DIR/prober.py" loop "$stop" $PROTECTED_PORT 0.3 \
    $ORIGIN_A4 $ORIGIN_A6 >"$OG_TMP/attacker$i.json"
done
og_bg ip netns exec "$ORIGIN" "$NFT_APPLY" --sample-set edge_v6 --stop-file "$stop" >"$OG_TMP/sampler.json"
sleep 1

start=$SECONDS
nft_apply --ranges "$OG_TMP/a.txt" --alt-ranges "$OG_TMP/b.txt" --ports $PROTECTED_PORT \
  --count "$COUNT" --quiet >"$OG_TMP/churn.json" 2>"$OG_TMP/churn.log" || { cat "$OG_TMP/churn.log" >&2; og_fail "churn applies"; }
elapsed=$((SECONDS - start))
sleep 1
touch "$stop"
for pid in "${OG_PIDS[@]:1}"; do wait "$pid" 2>/dev/null || true; done

og_log "churn: $(head -1 "$OG_TMP/churn.json") in ${elapsed}s"
og_log "edge: $(cat "$OG_TMP/edge1.json") $(cat "$OG_TMP/edge2.json")"
og_log "attacker: $(cat "$OG_TMP/attacker1.json") $(cat "$OG_TMP/attacker2.json")"
og_log "reader of edge_v6 (A has $count_a elements, B has $count_b): $(cat "$OG_TMP/sampler.json")"
applies=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["applies"])' "$OG_TMP/churn.json")
og_check "$applies set replacements (>= $COUNT)" test "$applies" -ge "$COUNT"
read -r edge_ok edge_failed < <(python3 -c '
import json, sys
t = [json.load(open(f)) for f in sys.argv[1:]]
print(sum(x["ok"] for x in t), sum(x["failed"] for x in t))' "$OG_TMP/edge1.json" "$OG_TMP/edge2.json")
read -r atk_ok atk_failed < <(python3 -c '
import json, sys
t = [json.load(open(f)) for f in sys.argv[1:]]
print(sum(x["ok"] for x in t), sum(x["failed"] for x in t))' "$OG_TMP/attacker1.json" "$OG_TMP/attacker2.json")
og_check "edge connections: $edge_ok ok, $edge_failed failed (want 0 failed)" test "$edge_failed" -eq 0
og_check "edge connections happened during churn ($edge_ok >= 200)" test "$edge_ok" -ge 200
og_check "attacker connections: $atk_ok succeeded (want 0), $atk_failed dropped" test "$atk_ok" -eq 0
og_check "attacker probed during churn ($atk_failed >= 20)" test "$atk_failed" -ge 20
og_check "a concurrent reader only ever saw set A or set B ($count_a/$count_b elements)" python3 -c '
import json, sys
x = json.load(open(sys.argv[1]))
views = set(x["counts"]) - {"error"}  # "error": no consistent dump after 5 tries, no view
ok = views <= {sys.argv[2], sys.argv[3]} and x["samples"] >= 10 and sys.argv[2] != sys.argv[3]
sys.exit(0 if ok else 1)' "$OG_TMP/sampler.json" "$count_a" "$count_b"
og_check "final state has no drift" bash -c "! ip netns exec $ORIGIN $NFT_APPLY --ranges $OG_TMP/a.txt --ports $PROTECTED_PORT --quiet --cycles 1 | grep -q repaired"
og_finish
