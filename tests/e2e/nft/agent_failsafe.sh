#!/usr/bin/env bash
# The agent never reports success, or HEALTHY, while less is enforced than configured:
# - a first apply that fails (another process owns `table inet originguard`) is retried
#   with backoff, and status is degraded until it succeeds;
# - a reload whose apply fails, or that the lock-out guard refuses, answers ok:false (exit 1)
#   and leaves the previous config in force; range updates keep being applied under it, and
#   `explain` reports what the kernel holds;
# - a dormant table is woken by the periodic verify;
# - after `agentctl uninstall` status is degraded, a range change does not put the rules
#   back, a reload does.
source "$(dirname "$0")/lib_nft.sh"
og_setup nft-failsafe
[[ -x $AGENT && -x $CTL ]] || { og_log "SKIP: originguard-agent/agentctl not built"; exit 77; }
nft_topology failsafe

SOCK=$OG_TMP/agent.sock
cat >"$OG_TMP/ranges.json" <<'JSON'
{"result": {"ipv4_cidrs": ["198.51.100.0/24"], "ipv6_cidrs": ["2001:db8:cf::/48"]},
 "success": true, "errors": [], "messages": []}
JSON
write_config() {  # $1 = ports [$2 = verify_interval] [$3 = export_file]
  cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["file://$OG_TMP/ranges.json"]
state_dir = "$OG_TMP/state"
export_file = "${3:-}"
retry_min = "1h"
max_shrink = 1.0

[protect]
ports = [$1]
verify_interval = "${2:-1s}"

[control]
socket = "$SOCK"
TOML
}
write_config "$PROTECTED_PORT"

ctl() { ip netns exec "$ORIGIN" "$CTL" -s "$SOCK" "$@"; }
st() { og_status "$ORIGIN" "$SOCK" "$1"; }
status_rc() { local rc=0; ctl status >/dev/null 2>&1 || rc=$?; echo $rc; }
has_warning() { [[ $(st "[.warning_details[]?.id] | index(\"$1\") != null") == true ]]; }
lacks_warning() { ! has_warning "$1"; }
warning_text() { st ".warning_details[] | select(.id == \"$1\") | .text"; }
status_is() { [[ $(st "$1") == true ]]; }  # status_is JQ_BOOLEAN_FILTER
explain_is() { local f=$1; shift; ctl explain "$@" --json 2>/dev/null | jq -e "$f" >/dev/null; }  # FILTER IP PORT
table_absent() { ! nft_origin list table inet originguard >/dev/null 2>&1; }
# The sets as the kernel holds them (`nft list set` prints "elements = { a, b }").
set_elems() {
  nft_origin list set inet originguard "$1" 2>/dev/null | tr -d ' \t\n' | sed -n 's/.*elements={\([^}]*\)}.*/\1/p'
}
ours_present() { [[ $(nft_origin list table inet originguard 2>/dev/null) == *"managed by originguard-agent"* ]]; }
awake() { local t; t=$(nft_origin list table inet originguard) && [[ $t != *"flags dormant"* ]]; }

AGENT_PID=
start_agent() {
  ip netns exec "$ORIGIN" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
  AGENT_PID=$!
  OG_PIDS+=("$AGENT_PID")
  og_wait_for 10 ctl version
}

# --- 1. first apply fails while another process owns the table --------------------------
# `flags owner`: only the netlink socket that made the table may change it; it goes when
# that socket closes (nft -i exits 8 s after its stdin opens).
HOLD_S=8
(echo 'add table inet originguard { flags owner; }'; sleep $HOLD_S) | ip netns exec "$ORIGIN" nft -i >/dev/null 2>&1 &
OG_PIDS+=($!)
og_wait_for 5 nft_origin list table inet originguard || og_fail "could not create the owned table"
held_since=$SECONDS
start_agent
og_check "first apply refused: status degraded (exit 1)" [ "$(status_rc)" = 1 ]
og_check "status names it: nftables.not_applied" has_warning nftables.not_applied
og_check "enforcer state not_applied" [ "$(st .enforcers.nftables.state)" = not_applied ]

# A reload now cannot be applied either: it answers ok:false and the previous config stays.
write_config "$PROTECTED_PORT, 8443"
rc=0
out=$(ctl reload 2>&1) || rc=$?
og_check "reload whose apply fails exits 1" [ "$rc" = 1 ]
og_check "reload reply says why ($out)" grep -q "Operation not permitted" <<<"$out"
og_check "refused reload shown in status" has_warning config.reload_refused

og_check "the table is ours within 20 s of the owner going away" og_wait_for $((HOLD_S + 20)) ours_present
og_log "first apply succeeded $((SECONDS - held_since)) s after the start (owner held it ${HOLD_S} s)"
og_check "enforcer state enforcing after the retry" og_wait_for 5 status_is '.enforcers.nftables.state == "enforcing"'
og_check "not_applied warning cleared" lacks_warning nftables.not_applied
og_check "the previous config is in force: ports {$PROTECTED_PORT} ($(set_elems ports))" \
  [ "$(set_elems ports)" = "$PROTECTED_PORT" ]
og_check "attacker dropped once the retry succeeded" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
write_config "$PROTECTED_PORT"
og_check "good reload exits 0" ctl reload
og_check "healthy after a good reload" [ "$(status_rc)" = 0 ]

# --- 2. a reload the lock-out guard refuses ---------------------------------------------
write_config "22, $PROTECTED_PORT, 8443"
rc=0
out=$(ctl reload 2>&1) || rc=$?
og_check "reload adding 22 and 8443 without mgmt_allow exits 1" [ "$rc" = 1 ]
og_check "reload reply names the guard" grep -q "refusing to protect port 22" <<<"$out"
og_check "status degraded while the refused reload stands" [ "$(status_rc)" = 1 ]
og_check "kernel ports unchanged ($(set_elems ports))" [ "$(set_elems ports)" = "$PROTECTED_PORT" ]
og_check "explain 8.8.8.8 8443: accept, port not in set ports" \
  explain_is '.verdict == "accept" and (.reason | test("not in set ports"))' 8.8.8.8 8443
og_check "explain 8.8.8.8 $PROTECTED_PORT: drop, decided by nftables" \
  explain_is '.verdict == "drop" and .layer == "nftables"' 8.8.8.8 $PROTECTED_PORT
# agentctl checks the range itself; the agent must too (an int64 that truncates to 443)
og_check "the agent refuses port 4294967739" bash -c \
  "printf '{\"cmd\":\"explain\",\"ip\":\"8.8.8.8\",\"port\":4294967739}\n' | ip netns exec $ORIGIN socat - UNIX-CONNECT:$SOCK | jq -e '.ok == false and (.error | test(\"1..65535\"))'"
# Range updates keep being applied under the previous config.
sed -i 's|"ipv4_cidrs": \["198.51.100.0/24"\]|"ipv4_cidrs": ["198.51.100.0/24", "192.0.2.0/24"]|' "$OG_TMP/ranges.json"
og_check "refresh after the refused reload exits 0" ctl refresh
og_check "the new range is in the kernel ($(set_elems edge_v4))" grep -q "192.0.2.0/24" <<<"$(set_elems edge_v4)"
og_check "explain 192.0.2.9: accepted by the new range" \
  explain_is '.verdict == "accept" and .matched == "192.0.2.0/24"' 192.0.2.9 $PROTECTED_PORT
write_config "$PROTECTED_PORT"
ctl reload >/dev/null 2>&1 || og_fail "good reload"

# --- 3. a dormant table -------------------------------------------------------------------
repairs=$(st .enforcers.nftables.drift_repairs)
nft_origin add table inet originguard '{ flags dormant; }'
og_check "dormant table woken by the periodic verify" og_wait_for 5 awake
og_check "the repair is counted with its reason" status_is \
  ".enforcers.nftables.drift_repairs > $repairs and (.enforcers.nftables.last_drift.reasons | join(\" \") | test(\"dormant\"))"
og_check "attacker dropped after the repair" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

# --- 4. uninstall: degraded until a reload --------------------------------------------------
og_check "agentctl uninstall exits 0" ctl uninstall
og_check "table removed" table_absent
og_check "status after uninstall: DEGRADED, exit 1" [ "$(status_rc)" = 1 ]
og_check "status says why: nftables.uninstalled" has_warning nftables.uninstalled
og_check "human status tells how to get it back" grep -q 'until .agentctl reload' <<<"$(ctl status 2>/dev/null)"
og_check "metrics: originguard_healthy 0" grep -qx 'originguard_healthy 0' <<<"$(ctl metrics 2>/dev/null)"
og_check "explain after uninstall: accept, table not in the kernel" \
  explain_is '.verdict == "accept" and (.reason | test("not in the kernel")) and .configured.verdict == "drop"' \
  8.8.8.8 $PROTECTED_PORT
sed -i 's|, "192.0.2.0/24"||' "$OG_TMP/ranges.json"
ctl refresh >/dev/null 2>&1 || true
sleep 2.5  # two verify cycles: neither may put the table back
og_check "a range change and verify cycles do not reinstall it" table_absent
og_check "reload puts it back" ctl reload
og_check "table present after the reload" ours_present
og_check "healthy again" [ "$(status_rc)" = 0 ]
og_check "attacker dropped again" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

# --- 5. between two verifies, status reads the kernel -----------------------------------
write_config "$PROTECTED_PORT" 1h
ctl reload >/dev/null 2>&1 || og_fail "reload with a long verify_interval"
nft_origin delete table inet originguard
og_check "table deleted behind the agent's back: status degraded at once" [ "$(status_rc)" = 1 ]
og_check "status says why: nftables.table_missing" has_warning nftables.table_missing
og_check "metrics agree: originguard_healthy 0" grep -qx 'originguard_healthy 0' <<<"$(ctl metrics 2>/dev/null)"
og_check "reload repairs it" ctl reload
nft_origin add table inet originguard '{ flags dormant; }'
og_check "dormant table: status degraded at once" [ "$(status_rc)" = 1 ]
og_check "status says why: nftables.table_modified (dormant)" grep -q dormant <<<"$(warning_text nftables.table_modified)"
og_check "explain while dormant: accept, the hooks are off" \
  explain_is '.verdict == "accept" and (.reason | test("dormant"))' 8.8.8.8 $PROTECTED_PORT
og_check "reload wakes it" ctl reload
og_check "healthy after the repair" [ "$(status_rc)" = 0 ]

# --- 6. a failed export is retried, not only at the next range change -------------------
touch "$OG_TMP/blocker"  # a file where the export's directory should be
write_config "$PROTECTED_PORT" 1s "$OG_TMP/blocker/edge-ranges.json"
ctl reload >/dev/null 2>&1 || og_fail "reload with an export file"
og_check "export failure degrades status" has_warning export.failed
rm "$OG_TMP/blocker"
og_check "the export is retried by the periodic verify" og_wait_for 5 test -s "$OG_TMP/blocker/edge-ranges.json"
og_check "export warning cleared" og_wait_for 3 lacks_warning export.failed

kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_finish
