#!/usr/bin/env bash
# nftables enforcer, basic verdicts: edge reaches the protected port over IPv4 and IPv6, the
# attacker is dropped, an unprotected port stays open to both, established connections
# survive a refresh, the table reads naturally, the SSH lock-out guard refuses, uninstall.
source "$(dirname "$0")/lib_nft.sh"
og_setup nft-basic
nft_topology basic

og_check "before protection the attacker reaches $PROTECTED_PORT" reach "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
nft_apply --ranges "$OG_TMP/edge.txt" --ports $PROTECTED_PORT >"$OG_TMP/apply.json" 2>"$OG_TMP/apply.log" ||
  { cat "$OG_TMP/apply.log" >&2; og_fail "apply"; }

og_check "edge reaches the protected port over IPv4" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
og_check "edge reaches the protected port over IPv6" reach "$EDGE" $ORIGIN_E6 $PROTECTED_PORT
og_check "attacker is dropped over IPv4" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "attacker is dropped over IPv6" blocked "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT
og_check "unprotected port open to the attacker (IPv4)" reach "$ATTACKER" $ORIGIN_A4 $OPEN_PORT
og_check "unprotected port open to the attacker (IPv6)" reach "$ATTACKER" $ORIGIN_A6 $OPEN_PORT
og_check "unprotected port open to the edge" reach "$EDGE" $ORIGIN_E4 $OPEN_PORT
og_check "loopback reaches the protected port" reach "$ORIGIN" 127.0.0.1 $PROTECTED_PORT
dropped=$(counter_packets dropped)
og_check "drops are counted (dropped=$dropped)" test "$dropped" -ge 2
og_check "status reads the drop counter" \
  bash -c "ip netns exec $ORIGIN $NFT_APPLY --status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s[\"dropped\"][\"packets\"]>=2 and s[\"table_present\"] else 1)'"

# Only our table exists; it reads naturally: named sets, comments on every rule.
nft_origin list ruleset >"$OG_TMP/ruleset.txt"
og_check "only table inet originguard in the ruleset" \
  test "$(grep -c '^table' "$OG_TMP/ruleset.txt")" -eq 1
og_check "chain hooks input at priority filter - 10" grep -q 'type filter hook input priority filter - 10; policy accept;' "$OG_TMP/ruleset.txt"
og_check "every rule carries a comment" \
  test "$(grep -cE '(accept|drop|protected) comment "' "$OG_TMP/ruleset.txt")" -eq 9
og_check "edge set lists the ranges" grep -q 'elements = { 198.51.100.0/24 }' "$OG_TMP/ruleset.txt"
og_check "edge_v6 set lists the ranges" grep -q 'elements = { 2001:db8:cf::/48 }' "$OG_TMP/ruleset.txt"
og_check "nft can re-read what we wrote (-c)" bash -c "ip netns exec $ORIGIN nft -c -f $OG_TMP/ruleset.txt"

# Established connections survive a refresh, even one that removes their source.
rm -f "$OG_TMP/ready" "$OG_TMP/go"
ip netns exec "$EDGE" python3 "$OG_NFT_DIR/prober.py" hold $ORIGIN_E4 $PROTECTED_PORT "$OG_TMP/ready" "$OG_TMP/go" &
hold_pid=$!
OG_PIDS+=("$hold_pid")
og_wait_for 10 test -e "$OG_TMP/ready" || og_fail "long-lived connection did not start"
printf '192.0.2.0/24\n' >"$OG_TMP/other.txt"
nft_apply --ranges "$OG_TMP/other.txt" --ports $PROTECTED_PORT >/dev/null 2>&1 || og_fail "refresh apply"
og_check "after a refresh without the edge, new edge connections are dropped" blocked "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
touch "$OG_TMP/go"
if wait "$hold_pid"; then og_pass "established connection survived the refresh"; else og_fail "established connection broke"; fi
nft_apply --ranges "$OG_TMP/edge.txt" --ports $PROTECTED_PORT >/dev/null 2>&1 || og_fail "re-apply"
og_check "edge reaches again after the next refresh" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT

# Lock-out guard inside the enforcer (config validation refuses such a config, so the agent
# never hands one over): port 22, or the SSH session's port, without a management allow-list
# is left open, and every other port stays protected, never the whole apply refused.
ports_set() { nft_origin list set inet originguard ports | tr -d ' \t\n' | sed -n 's/.*elements={\([^}]*\)}.*/\1/p'; }
nft_apply --ranges "$OG_TMP/edge.txt" --ports 22,443 >"$OG_TMP/out" 2>&1 || og_fail "apply with a guarded port 22"
og_check "port 22 guard explains itself" grep -q "refusing to protect port 22" "$OG_TMP/out"
og_check "port 22 left out of set ports, 443 kept ($(ports_set))" test "$(ports_set)" = 443
og_check "status names the open port" grep -q '"id":"lockout_guard"' "$OG_TMP/out"
og_check "443 stays protected next to a guarded 22" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
SSH_CONNECTION="203.0.113.5 50000 $ORIGIN_A4 2222" nft_apply --ranges "$OG_TMP/edge.txt" --ports 443,2222 \
  >"$OG_TMP/out" 2>&1 || og_fail "apply with a guarded SSH session port"
og_check "SSH session port guard explains itself" grep -q "port of the current SSH session" "$OG_TMP/out"
og_check "SSH session port left out, 443 kept ($(ports_set))" test "$(ports_set)" = 443
og_check "443 stays protected next to a guarded SSH port" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "port 22 with mgmt_allow is accepted" \
  nft_apply --ranges "$OG_TMP/edge.txt" --ports 22,443 --mgmt-prefix 192.0.2.0/24
og_check "mgmt set holds the allow-list" bash -c "ip netns exec $ORIGIN nft list set inet originguard mgmt_v4 | grep -q 192.0.2.0/24"

# Edges of the address space: a range ending at the last address has no interval-end element,
# /0 is a single start element. Both must apply and read back without drift.
printf '198.51.100.0/24\n255.255.255.0/24\nffff::/16\n2001:db8:cf::/48\n' >"$OG_TMP/extremes.txt"
og_check "ranges reaching the last address and /0 apply and verify without drift" bash -c "
  out=\$(ip netns exec $ORIGIN $NFT_APPLY --ranges $OG_TMP/extremes.txt --mgmt-prefix 0.0.0.0/0 \
        --mgmt-prefix ::/0 --ports $PROTECTED_PORT --quiet --cycles 2 --interval-ms 100) &&
  ! grep -q repaired <<<\"\$out\""
og_check "mgmt_allow 0.0.0.0/0 admits the attacker" reach "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "mgmt_allow ::/0 admits the attacker over IPv6" reach "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT

# Uninstall removes exactly our table.
og_check "uninstall succeeds" nft_apply --uninstall
og_check "table is gone" test -z "$(nft_origin list ruleset)"
og_check "after uninstall the attacker reaches $PROTECTED_PORT again" reach "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

og_finish
