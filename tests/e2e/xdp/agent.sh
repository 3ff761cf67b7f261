#!/usr/bin/env bash
# The real originguard-agent + agentctl with XDP and nftables, over veth pairs in native mode:
# the edge reaches the protected port, the attacker is dropped at XDP (the XDP drop counter
# grows, nftables' does not); explain names the layer; a connection accepted in audit mode
# survives the switch to enforce (conntrack check); restart and kill -9 keep protection and
# the restarted agent adopts the pins; a detached link is repaired; an interface that
# disappears is reported and re-attached when it returns; a second agent is locked out;
# uninstall leaves nothing attached or pinned; an unrelated XDP program is never touched.
source "$(dirname "$0")/lib_xdp.sh"
og_setup xdp-agent
[[ -x $AGENT && -x $CTL ]] || { og_log "SKIP: originguard-agent/agentctl not built"; exit 77; }
xdp_topology agent
foreign_load || { og_log "SKIP: xdp-filter cannot load an XDP program here"; exit 77; }
FOREIGN=$(xdp_prog ogxu)

SOCK=$OG_TMP/agent.sock
cat >"$OG_TMP/ranges.json" <<'JSON'
{"result": {"ipv4_cidrs": ["198.51.100.0/24", "192.0.2.0/25"], "ipv6_cidrs": ["2001:db8:cf::/48"]},
 "success": true, "errors": [], "messages": []}
JSON
write_config() {  # $1 = mode, $2 = extra [xdp] lines, $3 = pin_dir (default $PIN_DIR)
  cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["file://$OG_TMP/ranges.json"]
state_dir = "$OG_TMP/state"
export_file = ""
retry_min = "1h"
max_shrink = 1.0

[protect]
ports = [$PROTECTED_PORT]
mode = "$1"
verify_interval = "1s"

[control]
socket = "$SOCK"

[xdp]
interfaces = ["ogxe", "ogxa"]
mode = "native"
pin_dir = "${3:-$PIN_DIR}"
${2:-}
TOML
}
write_config enforce

ctl() { ip netns exec "$ORIGIN" "$CTL" -s "$SOCK" "$@"; }
st() { og_status "$ORIGIN" "$SOCK" "$1"; }
AGENT_PID=
start_agent() {
  ip netns exec "$ORIGIN" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
  AGENT_PID=$!
  OG_PIDS+=("$AGENT_PID")
  og_wait_for 10 ctl version
}
attached() { [[ $(st .enforcers.xdp.attached) == true ]]; }
xdp_dropped() { st .enforcers.xdp.dropped_packets; }
link_id() { bpftool -j link show pinned "$PIN_DIR/link_$1" 2>/dev/null | jq -r .id; }

start_agent
og_check "XDP attached on both interfaces" og_wait_for 10 attached
og_check "status: native mode" [ "$(st .enforcers.xdp.mode)" = native ]
og_check "status: interfaces" [ "$(st '[.enforcers.xdp.interfaces[] | "\(.name)=\(.state)"] | join(",")')" = "ogxe=attached,ogxa=attached" ]
og_check "status: last_apply" [ "$(st '.enforcers.xdp.last_apply | (.time|type) == "string" and .duration_ms >= 0')" = true ]
og_check "the program status names runs in native mode on ogxa" [ "$(xdp_prog ogxa)" = "$(st .enforcers.xdp.program.id)" ]
og_check "pins: links and counters" test -e "$PIN_DIR/link_ogxe" -a -e "$PIN_DIR/link_ogxa" -a -e "$PIN_DIR/counters"

og_check "edge reaches over IPv4" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
og_check "edge reaches over IPv6" reach "$EDGE" $ORIGIN_E6 $PROTECTED_PORT
og_check "open port stays open for the attacker" reach "$ATTACKER" $ORIGIN_A4 $OPEN_PORT
xdp0=$(xdp_dropped)
og_check "attacker dropped over IPv4" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "attacker dropped over IPv6" blocked "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT
og_check "the XDP drop counter grew ($xdp0 -> $(xdp_dropped))" [ "$(xdp_dropped)" -ge $((xdp0 + 2)) ]
og_check "nftables' drop counter did not: XDP dropped first ($(nft_dropped))" [ "$(nft_dropped)" = 0 ]
og_check "explain: the attacker is dropped by xdp" [ "$(ctl explain --json $ATK4 $PROTECTED_PORT | jq -r .layer)" = xdp ]
og_check "explain: the edge passes both layers" [ "$(ctl explain --json $EDGE4 $PROTECTED_PORT | jq -r '"\(.layer) \(.verdict) \(.enforcers.xdp.verdict)"')" = "xdp + nftables accept accept" ]
og_check "metrics: XDP drops by family" bash -c "ip netns exec $ORIGIN $CTL -s $SOCK metrics | grep -q 'originguard_xdp_packets_total{family=\"ipv4\",verdict=\"drop\",reason=\"dropped\"} [1-9]'"
og_check "human status shows the XDP section" bash -c "ip netns exec $ORIGIN $CTL -s $SOCK status | grep -q 'xdp  attached, native mode'"

# A connection accepted in audit mode survives the switch to enforce: nftables accepts it as
# established, so XDP must pass it (conntrack check) while new attacker connections drop.
write_config audit
ctl reload >/dev/null 2>&1 || og_fail "reload to audit"
og_check "audit: the attacker reaches" reach "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "audit: counted as would-drop" [ "$(st '.enforcers.xdp.audit_would_drop_packets >= 1')" = true ]
og_bg ip netns exec "$ATTACKER" python3 "$OG_NFT_DIR/prober.py" hold $ORIGIN_A4 $PROTECTED_PORT "$OG_TMP/ready" "$OG_TMP/go"
held=$!
og_wait_for 5 test -e "$OG_TMP/ready" || og_fail "held connection not established"
write_config enforce
ctl reload >/dev/null 2>&1 || og_fail "reload to enforce"
og_check "enforce again: a new attacker connection is dropped" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
touch "$OG_TMP/go"
if [[ $(st .enforcers.xdp.program.conntrack) == true ]]; then
  og_check "the connection accepted in audit mode still works" wait "$held"
  og_check "... passed on by XDP as tracked" [ "$(st '.enforcers.xdp.counters.ipv4.tracked.packets >= 1')" = true ]
else
  og_log "no conntrack check on this kernel ($(st .enforcers.xdp.program.conntrack_error)): skipping the held connection"
  wait "$held" || true
fi

# Drift: someone detaches the link; the agent re-attaches it (the detach is a link
# notification, and the verify every second would find it too).
link_detached=$(link_id ogxe)
bpftool link detach pinned "$PIN_DIR/link_ogxe"
og_check "detached link repaired with a new link" og_wait_for 5 bash -c "[ \"\$(bpftool -j link show pinned $PIN_DIR/link_ogxe 2>/dev/null | jq -r .id)\" != $link_detached ]"
og_check "program back on ogxe" og_wait_for 5 has_xdp ogxe
og_check "drift repair counted" [ "$(st '.enforcers.xdp.drift_repairs >= 1')" = true ]

# An interface that disappears is reported and re-attached when it returns (netlink events).
ip -n "$ORIGIN" link del ogxa
og_check "status: ogxa missing" og_wait_for 5 bash -c "[ \"\$(ip netns exec $ORIGIN $CTL -s $SOCK status --json | jq -r '.enforcers.xdp.interfaces[] | select(.name == \"ogxa\") | .state')\" = missing ]"
og_check "a missing interface degrades health" [ "$(st .health)" = degraded ]
xdp_pair ogxa "$ATTACKER" $ORIGIN_A4/24 $ATK4/24 $ORIGIN_A6/64 $ATK6/64 2>/dev/null ||
  { ip -n "$ATTACKER" link del peer0 2>/dev/null; xdp_pair ogxa "$ATTACKER" $ORIGIN_A4/24 $ATK4/24 $ORIGIN_A6/64 $ATK6/64; }
og_check "returned interface re-attached" og_wait_for 5 has_xdp ogxa
og_check "attacker dropped again on the returned interface" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

# kill -9 keeps protection; the restarted agent adopts the pinned links (same ids).
link_before=$(link_id ogxe)
dropped_before=$(xdp_dropped)
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_check "program stays attached after kill -9" has_xdp ogxe
og_check "attacker still dropped while no agent runs" blocked "$ATTACKER" $ORIGIN_A6 $PROTECTED_PORT
og_check "edge still reaches while no agent runs" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
start_agent
og_check "restarted agent attached" og_wait_for 10 attached
og_check "restarted agent adopted the pinned link (id $link_before)" [ "$(link_id ogxe)" = "$link_before" ]
og_check "counters kept across the restart ($dropped_before -> $(xdp_dropped))" [ "$(xdp_dropped)" -gt "$dropped_before" ]
# ... and a clean restart too.
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_check "program stays attached after a clean stop" has_xdp ogxe
start_agent
og_check "agent attached after a clean restart" og_wait_for 10 attached
og_check "attacker dropped after the restarts" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT

# A second agent on the same pin directory is locked out of XDP (its nftables is unaffected).
sed "s|$SOCK|$OG_TMP/second.sock|" "$OG_TMP/agent.toml" >"$OG_TMP/second.toml"
ip netns exec "$ORIGIN" "$AGENT" --config "$OG_TMP/second.toml" --foreground 2>>"$OG_TMP/second.log" &
second=$!
OG_PIDS+=("$second")
og_wait_for 10 ip netns exec "$ORIGIN" "$CTL" -s "$OG_TMP/second.sock" version || og_fail "second agent did not start"
og_check "second agent: XDP refused because of the lock" bash -c "ip netns exec $ORIGIN $CTL -s $OG_TMP/second.sock status --json | grep -q 'holds the lock'"
kill -TERM "$second"
wait "$second" 2>/dev/null || true
og_check "the first agent still drives XDP" attached

# uninstall: nothing of ours attached or pinned; the unrelated program untouched; enforcement
# stays off (degraded, with its id) until a reload.
has_warning() { [[ $(st "[.warning_details[]?.id] | index(\"$1\") != null") == true ]]; }
og_check "agentctl uninstall" ctl uninstall
og_check "no XDP left on ogxe" no_xdp ogxe
og_check "no XDP left on ogxa" no_xdp ogxa
og_check "nothing pinned" test ! -e "$PIN_DIR"
og_check "status: xdp uninstalled" [ "$(st .enforcers.xdp.state)" = uninstalled ]
og_check "status: warning xdp.uninstalled" has_warning xdp.uninstalled
og_check "status: degraded while uninstalled" [ "$(st .health)" = degraded ]
sleep 2.5
og_check "uninstalled program stays away across verify cycles" no_xdp ogxe
og_check "the unrelated XDP program on ogxu was never touched (id $FOREIGN)" [ "$(xdp_prog ogxu)" = "$FOREIGN" ]
og_check "a reload resumes XDP" ctl reload
og_check "attached again after the reload" og_wait_for 10 attached
og_check "status: xdp enforcing again" [ "$(st .enforcers.xdp.state)" = enforcing ]

# [xdp] enabled = false: a reload removes the programs and the pins (stale tables would keep
# dropping with nobody refreshing them); nftables protects alone.
write_config enforce "enabled = false"
og_check "reload disabling XDP" ctl reload
og_check "disabled: no XDP on ogxe" no_xdp ogxe
og_check "disabled: no XDP on ogxa" no_xdp ogxa
og_check "disabled: nothing pinned" test ! -e "$PIN_DIR"
og_check "disabled: no xdp enforcer in status" [ "$(st '.enforcers | has("xdp")')" = false ]
nft0=$(nft_dropped)
og_check "disabled: the attacker is dropped by nftables" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "... whose drop counter grew ($nft0 -> $(nft_dropped))" [ "$(nft_dropped)" -gt "$nft0" ]
write_config enforce
og_check "reload enabling XDP again" ctl reload
og_check "enabled again: attached" og_wait_for 10 attached
# ... and what an earlier run left is removed when an agent starts with XDP disabled.
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_check "left attached by the killed agent" has_xdp ogxe
write_config enforce "enabled = false"
start_agent
og_check "start with XDP disabled: leftovers detached" og_wait_for 5 no_xdp ogxe
og_check "start with XDP disabled: nothing pinned" test ! -e "$PIN_DIR"

# XDP that cannot run here (pin_dir not on a bpf filesystem: as without bpffs or kernel
# support) is degraded with its own id, nftables enforces alone, and reloads still go through.
write_config enforce "" "$OG_TMP/not-bpffs/originguard"
rc=0
out=$(ctl reload 2>&1) || rc=$?
og_check "reload enabling an unavailable XDP answers ok ($out)" [ "$rc" = 0 ]
og_check "... and says XDP is not in force" grep -q "note: not in force where the layer cannot run on this machine: xdp" <<<"$out"
og_check "status: warning xdp.unavailable" og_wait_for 5 has_warning xdp.unavailable
og_check "status: nftables enforcing" [ "$(st .enforcers.nftables.state)" = enforcing ]
og_check "unavailable XDP: the attacker is still dropped (nftables)" blocked "$ATTACKER" $ORIGIN_A4 $PROTECTED_PORT
og_check "unavailable XDP: the edge reaches" reach "$EDGE" $ORIGIN_E4 $PROTECTED_PORT
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_finish
