#!/usr/bin/env bash
# Audit mode drops nothing and counts (and logs, rate-limited) what it would have dropped;
# switching to enforce starts dropping, with the audit count kept.
source "$(dirname "$0")/lib_nft.sh"
og_setup nft-audit
nft_topology audit

nft_apply --ranges "$OG_TMP/edge.txt" --ports $PROTECTED_PORT --mode audit >"$OG_TMP/audit.out" 2>&1 ||
  og_fail "audit apply"
og_check "status says audit" grep -q '"mode":"audit"' "$OG_TMP/audit.out"
og_check "attacker reaches the protected port in audit mode (IPv4)" reach "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "attacker reaches the protected port in audit mode (IPv6)" reach "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT
og_check "edge reaches in audit mode" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
would=$(counter_packets audit_would_drop)
og_check "would-drop counter counts the attacker ($would >= 2)" test "$would" -ge 2
og_check "nothing dropped in audit mode" test "$(counter_packets dropped)" -eq 0
nft_origin list chain inet originguard protected >"$OG_TMP/chain.txt"
og_check "audit rule logs rate-limited and accepts" \
  grep -q 'counter name "audit_would_drop" limit rate 10/second log prefix "originguard audit would-drop: " accept' "$OG_TMP/chain.txt"
og_check "no drop rule in audit mode" bash -c "! grep -q ' drop comment' $OG_TMP/chain.txt"

nft_apply --ranges "$OG_TMP/edge.txt" --ports $PROTECTED_PORT --mode enforce >/dev/null 2>&1 || og_fail "enforce apply"
og_check "attacker dropped after switching to enforce" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "drops counted in enforce mode" test "$(counter_packets dropped)" -ge 1
og_check "audit count kept across the mode switch" test "$(counter_packets audit_would_drop)" -ge "$would"
og_finish
