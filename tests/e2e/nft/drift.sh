#!/usr/bin/env bash
# Drift repair: a running enforcer (og-nft-apply verifying every 0.5 s, like the agent's
# refresh cycle) repairs a deleted table, an edited set, a flushed chain, a foreign chain in
# its table, a dormant table, and `nft flush ruleset`, each within one cycle. A pre-existing unrelated table
# is byte-identical before and after the enforcer runs and exits.
source "$(dirname "$0")/lib_nft.sh"
og_setup nft-drift
nft_topology drift
INTERVAL_MS=500

nft_origin -f - <<'NFT'
table ip unrelated {
  set watched { type ipv4_addr; elements = { 192.0.2.99, 192.0.2.100 } }
  chain c {
    type filter hook input priority 0; policy accept;
    tcp dport 9999 ip saddr @watched counter drop comment "someone else's rule"
  }
}
table inet other {
  chain passthru { type filter hook forward priority 0; policy accept; }
}
NFT
nft_origin -a list table ip unrelated >"$OG_TMP/unrelated.before"
nft_origin -a list table inet other >"$OG_TMP/other.before"

start_daemon() {
  ip netns exec "$ORIGIN" "$NFT_APPLY" --ranges "$OG_TMP/edge.txt" --ports $PROTECTED_PORT \
    --cycles -1 --interval-ms $INTERVAL_MS >>"$OG_TMP/daemon.out" 2>>"$OG_TMP/daemon.log" &
  DAEMON=$!
  OG_PIDS+=("$DAEMON")
  og_wait_for 5 nft_origin list table inet originguard || og_fail "enforcer did not install the table"
}
stop_daemon() {
  kill -TERM "$DAEMON"
  wait "$DAEMON" || true
}
table_present() { nft_origin list table inet originguard; }
# repaired_within SECONDS CMD...: CMD becomes true within SECONDS (one cycle plus slack).
repaired_within() { og_wait_for "$@"; }
ONE_CYCLE=2

start_daemon
og_check "attacker dropped" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

nft_origin delete table inet originguard
og_check "deleted table is repaired within one cycle" repaired_within $ONE_CYCLE table_present
og_check "attacker dropped after table repair" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

nft_origin add element inet originguard edge_v4 '{ 203.0.113.0/24 }'
no_attacker_elem() { ! nft_origin list set inet originguard edge_v4 | grep -q 203.0.113.0; }
og_check "attacker prefix added to edge_v4 is removed within one cycle" repaired_within $ONE_CYCLE no_attacker_elem
og_check "attacker dropped after set repair" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

nft_origin flush chain inet originguard protected
drop_rule_back() { nft_origin list chain inet originguard protected | grep -q 'counter name "dropped" drop'; }
og_check "flushed chain is refilled within one cycle" repaired_within $ONE_CYCLE drop_rule_back

nft_origin add chain inet originguard sneaky
no_sneaky() { ! nft_origin list table inet originguard | grep -q 'chain sneaky'; }
og_check "foreign chain in our table is removed within one cycle (rebuild)" repaired_within $ONE_CYCLE no_sneaky
og_check "edge still reaches after the rebuild" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT

# `flags dormant` switches every hook of the table off while its contents stay the same.
nft_origin add table inet originguard '{ flags dormant; }'
# (not `! nft ... | grep -q`: with pipefail, grep's early exit makes nft die of SIGPIPE)
awake() { local t; t=$(nft_origin list table inet originguard) && [[ $t != *"flags dormant"* ]]; }
og_check "dormant table is woken within one cycle" repaired_within $ONE_CYCLE awake
og_check "attacker dropped after the table is woken" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

stop_daemon
repairs=$(tail -1 "$OG_TMP/daemon.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["drift_repairs"])')
og_check "status counts the repairs ($repairs >= 5)" test "$repairs" -ge 5
og_check "repairs are logged" grep -q 'event=nft.drift.repaired' "$OG_TMP/daemon.log"
og_check "table stays after the enforcer exits" table_present
nft_origin -a list table ip unrelated >"$OG_TMP/unrelated.after"
nft_origin -a list table inet other >"$OG_TMP/other.after"
og_check "unrelated table ip unrelated is byte-identical" cmp "$OG_TMP/unrelated.before" "$OG_TMP/unrelated.after"
og_check "unrelated table inet other is byte-identical" cmp "$OG_TMP/other.before" "$OG_TMP/other.after"

start_daemon
nft_origin flush ruleset
og_check "nft flush ruleset is repaired within one cycle" repaired_within $ONE_CYCLE table_present
og_check "attacker dropped after flush repair" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "edge reaches after flush repair" reach "$EDGE" $ORIGIN_E6 $PROTECTED_PORT
og_check "the enforcer did not resurrect other tables" test "$(nft_origin list tables)" = "table inet originguard"
stop_daemon
og_finish
