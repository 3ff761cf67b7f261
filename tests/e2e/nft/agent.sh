#!/usr/bin/env bash
# The real originguard-agent + agentctl driving the nftables enforcer (ranges from a file://
# source): verdicts, status.enforcers.nftables, drift repair by the periodic verify and by
# `agentctl reload`, a refresh that changes the ranges, audit mode by config reload, kill -9
# and restart adopting the table, the lock-out guard, `agentctl uninstall`.
source "$(dirname "$0")/lib_nft.sh"
og_setup nft-agent
[[ -x $AGENT && -x $CTL ]] || { og_log "SKIP: originguard-agent/agentctl not built"; exit 77; }
nft_topology agent

SOCK=$OG_TMP/agent.sock
cat >"$OG_TMP/ranges.json" <<'JSON'
{"result": {"ipv4_cidrs": ["198.51.100.0/24", "192.0.2.0/25"], "ipv6_cidrs": ["2001:db8:cf::/48"]},
 "success": true, "errors": [], "messages": []}
JSON
write_config() {  # $1 = mode, $2 = ports, $3 = mgmt_allow
  cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["file://$OG_TMP/ranges.json"]
state_dir = "$OG_TMP/state"
export_file = ""
retry_min = "1h"
max_shrink = 1.0

[protect]
ports = [$2]
mgmt_allow = [$3]
mode = "$1"
verify_interval = "1s"

[control]
socket = "$SOCK"

[nftables]
enabled = true
TOML
}
write_config enforce "$PROTECTED_PORT" ""

ctl() { ip netns exec "$ORIGIN" "$CTL" -s "$SOCK" "$@"; }
st() { og_status "$ORIGIN" "$SOCK" "$1"; }
AGENT_PID=
start_agent() {
  ip netns exec "$ORIGIN" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
  AGENT_PID=$!
  OG_PIDS+=("$AGENT_PID")
  og_wait_for 10 ctl version
  og_wait_for 10 nft_origin list set inet originguard edge_v6
}
table_present() { nft_origin list table inet originguard; }
table_handle() { nft_origin -a list table inet originguard | sed -n '1s/.*# handle \([0-9]*\).*/\1/p'; }

start_agent
og_check "edge reaches over IPv4" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
og_check "edge reaches over IPv6" reach "$EDGE" $ORIGIN_E6 $PROTECTED_PORT
og_check "attacker dropped over IPv4" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "attacker dropped over IPv6" blocked "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT
og_check "open port stays open" reach "$ATTACKER" $ORIGIN_A4 $OPEN_PORT
og_check "status: table present" [ "$(st .enforcers.nftables.table_present)" = true ]
og_check "status: mode enforce" [ "$(st .enforcers.nftables.mode)" = enforce ]
og_check "status: element counts per family" [ "$(st '.enforcers.nftables.elements | "\(.edge_v4) \(.edge_v6)"')" = "2 1" ]
og_check "status: drops counted" [ "$(st '.enforcers.nftables.dropped.packets >= 2')" = true ]
og_check "status: last apply time and duration" [ "$(st '.enforcers.nftables.last_apply | (.time|type) == "string" and .duration_ms >= 0')" = true ]

# Drift: repaired by the periodic verify (1 s here) and at once by `agentctl reload`.
nft_origin delete table inet originguard
og_check "deleted table repaired by the periodic verify" og_wait_for 4 table_present
nft_origin add element inet originguard edge_v4 '{ 203.0.113.0/24 }'
ctl reload >/dev/null 2>&1 || true
og_check "edited set repaired by agentctl reload" \
  bash -c "! ip netns exec $ORIGIN nft list set inet originguard edge_v4 | grep -q 203.0.113.0"
og_check "attacker dropped after the repairs" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
# reload applies first (that already fixes the set), so only the verify repair is counted
og_check "status: drift repair counted, with its reason" [ "$(st '.enforcers.nftables.drift_repairs >= 1 and (.enforcers.nftables.last_drift.reasons | length) >= 1')" = true ]

# A refresh that changes the ranges is applied.
sed -i 's|"198.51.100.0/24", ||' "$OG_TMP/ranges.json"
ctl refresh >/dev/null 2>&1 || true
og_check "refresh without the edge /24 drops the edge host" blocked "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
og_check "IPv6 edge still reaches" reach "$EDGE" $ORIGIN_E6 $PROTECTED_PORT
sed -i 's|"ipv4_cidrs": \[|"ipv4_cidrs": ["198.51.100.0/24", |' "$OG_TMP/ranges.json"
ctl refresh >/dev/null 2>&1 || true
og_check "refresh with the edge /24 back lets it in" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT

# Audit mode by config reload.
write_config audit "$PROTECTED_PORT" ""
ctl reload >/dev/null 2>&1 || og_fail "reload to audit"
og_check "status: mode audit" [ "$(st .enforcers.nftables.mode)" = audit ]
og_check "audit mode lets the attacker in" reach "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "audit mode counts the would-be drop" [ "$(st '.enforcers.nftables.audit_would_drop.packets >= 1')" = true ]
write_config enforce "$PROTECTED_PORT" ""
ctl reload >/dev/null 2>&1 || og_fail "reload to enforce"
og_check "back in enforce mode the attacker is dropped" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

# Lock-out guard through the agent: a reload with port 22 without mgmt_allow is refused by
# config validation, the rules stay unchanged.
before=$(nft_origin list table inet originguard | md5sum)
write_config enforce "22, $PROTECTED_PORT" ""
ctl reload >/dev/null 2>&1 || true
og_check "port 22 without mgmt_allow: reload refused and shown in status" \
  bash -c "ip netns exec $ORIGIN $CTL -s $SOCK status --json | grep -q 'refusing to protect port 22'"
og_check "refused apply changed nothing" [ "$(nft_origin list table inet originguard | md5sum)" = "$before" ]
write_config enforce "$PROTECTED_PORT" ""
ctl reload >/dev/null 2>&1 || true

# kill -9 leaves protection; a restart adopts the same table.
handle=$(table_handle)
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_check "table survives kill -9 of the agent" table_present
og_check "attacker dropped while the agent is down" blocked "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT
start_agent
og_check "restarted agent adopted the table (handle $handle)" [ "$(table_handle)" = "$handle" ]
og_check "edge reaches after restart" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT

# agentctl uninstall removes the table, and the periodic verify does not put it back.
og_check "agentctl uninstall" ctl uninstall
og_check "table removed" bash -c "! ip netns exec $ORIGIN nft list table inet originguard"
sleep 2.5
og_check "uninstalled table stays removed across verify cycles" bash -c "! ip netns exec $ORIGIN nft list table inet originguard"
og_check "attacker reaches after uninstall" reach "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_finish
