#!/usr/bin/env bash
# Lifecycle: protection persists when the enforcer is killed with SIGKILL or exits; a restart
# adopts the existing table (same table handle, counters kept) with no gap: no attacker
# connection succeeds and no edge connection fails while it restarts.
source "$(dirname "$0")/lib_nft.sh"
og_setup nft-lifecycle
nft_topology lifecycle

start_daemon() {
  ip netns exec "$ORIGIN" "$NFT_APPLY" --ranges "$OG_TMP/edge.txt" --ports $PROTECTED_PORT \
    --cycles -1 --interval-ms 500 >>"$OG_TMP/daemon.out" 2>>"$OG_TMP/daemon.log" &
  DAEMON=$!
  OG_PIDS+=("$DAEMON")
}
table_handle() { nft_origin -a list table inet originguard | sed -n '1s/.*# handle \([0-9]*\).*/\1/p'; }

start_daemon
og_wait_for 5 nft_origin list table inet originguard || og_fail "enforcer did not install the table"
og_check "attacker dropped" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
handle_before=$(table_handle)

kill -KILL "$DAEMON"
wait "$DAEMON" 2>/dev/null || true
og_check "table survives kill -9" nft_origin list table inet originguard
og_check "attacker still dropped after kill -9 (IPv4)" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "attacker still dropped after kill -9 (IPv6)" blocked "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT
og_check "edge still reaches after kill -9" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
dropped_before=$(counter_packets dropped)

stop="$OG_TMP/stop"
og_bg ip netns exec "$EDGE" python3 "$OG_NFT_DIR/prober.py" loop "$stop" $PROTECTED_PORT 2 \
  $ORIGIN_E4 $ORIGIN_E6 >"$OG_TMP/edge.json"
edge_prober=$!
og_bg ip netns exec "$ATTACKER" python3 "$OG_NFT_DIR/prober.py" loop "$stop" $PROTECTED_PORT 0.3 \
  $ORIGIN_A4 $ORIGIN_A6 >"$OG_TMP/attacker.json"
attacker_prober=$!
sleep 1
for _ in 1 2 3; do
  start_daemon
  sleep 1.5
  kill -KILL "$DAEMON"
  wait "$DAEMON" 2>/dev/null || true
done
start_daemon
sleep 1.5
touch "$stop"
wait "$edge_prober" "$attacker_prober" || true
og_log "edge: $(cat "$OG_TMP/edge.json") attacker: $(cat "$OG_TMP/attacker.json")"
read -r edge_ok edge_failed < <(python3 -c 'import json,sys; x=json.load(open(sys.argv[1])); print(x["ok"], x["failed"])' "$OG_TMP/edge.json")
read -r atk_ok atk_failed < <(python3 -c 'import json,sys; x=json.load(open(sys.argv[1])); print(x["ok"], x["failed"])' "$OG_TMP/attacker.json")
og_check "no edge connection failed across restarts ($edge_ok ok, $edge_failed failed)" test "$edge_failed" -eq 0 -a "$edge_ok" -gt 0
og_check "no attacker connection succeeded across restarts ($atk_ok ok, $atk_failed dropped)" test "$atk_ok" -eq 0 -a "$atk_failed" -gt 0
og_check "restart adopted the table (handle $handle_before -> $(table_handle))" test "$(table_handle)" = "$handle_before"
dropped_after=$(counter_packets dropped)
og_check "drop counter kept across restarts ($dropped_before -> $dropped_after)" test "$dropped_after" -ge "$dropped_before" -a "$dropped_before" -gt 0
og_check "restart did not need a repair" bash -c "! grep -q repaired $OG_TMP/daemon.out"

kill -TERM "$DAEMON"
wait "$DAEMON" || true
og_check "table stays after a clean exit" nft_origin list table inet originguard
og_check "attacker still dropped after a clean exit" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_finish
