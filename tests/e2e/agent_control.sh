#!/usr/bin/env bash
# e2e: the agent's control socket as other users and misbehaving clients see it.
# - [control] group members may read (status, metrics, explain, version), not change state:
#   uninstall, reload and refresh answer "permission denied" (exit 1, never a reset), and
#   each state-changing command is logged with the peer's uid and pid;
# - members of [control] admin_group may change state; a group held only at run time
#   (setpriv --groups, systemd's SupplementaryGroups=) counts;
# - RLIMIT_NOFILE 64 and 84 idle clients: the agent does not spin, and `version` answers;
# - a client that never reads its reply is dropped after the write timeout;
# - a socket directory others may write to is refused by --check-config and at start.
source "$(dirname "$0")/lib.sh"
og_setup control
[[ -x $AGENT && -x $CTL ]] || { og_log "SKIP: originguard-agent/agentctl not built"; exit 77; }
RO_GROUP=users ADMIN_GROUP=staff
RO_GID=$(getent group $RO_GROUP | cut -d: -f3) ADMIN_GID=$(getent group $ADMIN_GROUP | cut -d: -f3)
[[ -n $RO_GID && -n $ADMIN_GID ]] || { og_log "SKIP: groups $RO_GROUP and $ADMIN_GROUP are needed"; exit 77; }
CLIENTS=$OG_ROOT/tests/tools/control_clients.py

NS=$(og_netns control)
# uid 65534 must reach the socket: the scratch dir is traversable, not listable or writable.
chmod 0711 "$OG_TMP"
SOCK=$OG_TMP/run/agent.sock
cat >"$OG_TMP/ranges.json" <<'JSON'
{"result": {"ipv4_cidrs": ["198.51.100.0/24"], "ipv6_cidrs": ["2001:db8:cf::/48"]},
 "success": true, "errors": [], "messages": []}
JSON
write_config() {  # $1 = socket path
  cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["file://$OG_TMP/ranges.json"]
state_dir = "$OG_TMP/state"
export_file = ""
max_shrink = 1.0

[control]
socket = "$1"
group = "$RO_GROUP"
admin_group = "$ADMIN_GROUP"

[nftables]
enabled = false

[xdp]
enabled = false
TOML
}
write_config "$SOCK"

ctl() { ip netns exec "$NS" "$CTL" -s "$SOCK" "$@"; }
# as WHO CMD...: agentctl as uid 65534 with the groups of WHO
as() {
  local who=$1; shift
  local -a ids
  case $who in
    member) ids=(--regid="$RO_GID" --clear-groups) ;;                           # primary group
    runtime-member) ids=(--regid=65534 --groups="$RO_GID") ;;                   # held at run time only
    admin) ids=(--regid=65534 --groups="$RO_GID,$ADMIN_GID") ;;
    stranger) ids=(--regid=65534 --clear-groups) ;;
  esac
  ip netns exec "$NS" setpriv --reuid=65534 "${ids[@]}" "$CTL" -s "$SOCK" "$@"
}
rc_of() { local rc=0; "$@" >"$OG_TMP/out" 2>&1 || rc=$?; echo $rc; }
# status exits 1 when degraded: that still means it answered
answered() { [[ $1 == 0 || ($1 == 1 && $2 == status && $(cat "$OG_TMP/out") != *"permission denied"*) ]]; }
AGENT_PID=
start_agent() {  # [prlimit args...]
  ip netns exec "$NS" "$@" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
  AGENT_PID=$!
  OG_PIDS+=("$AGENT_PID")
  og_wait_for 10 ctl version
}
stop_agent() {
  kill -TERM "$AGENT_PID"
  wait "$AGENT_PID" 2>/dev/null || true
}

# --- 1. who may do what -----------------------------------------------------------------
start_agent
og_check "socket is 0660 root:$RO_GROUP" [ "$(stat -c '%a %U:%G' "$SOCK")" = "660 root:$RO_GROUP" ]
for cmd in status version metrics "explain 203.0.113.9 443"; do
  # shellcheck disable=SC2086
  rc=$(rc_of as member $cmd)
  og_check "group member: $cmd allowed (exit $rc)" answered "$rc" "${cmd%% *}"
done
for cmd in uninstall reload refresh "refresh --force"; do
  # shellcheck disable=SC2086
  rc=$(rc_of as member $cmd)
  og_check "group member: $cmd refused with exit 1 (got $rc)" [ "$rc" = 1 ]
  og_check "group member: $cmd answered \"permission denied\", not a reset" grep -q "permission denied" "$OG_TMP/out"
done
og_check "refused uninstall logged with uid and pid" \
  grep -Eq 'event=control.denied cmd=uninstall uid=65534 gid=[0-9]+ pid=[0-9]+' "$OG_TMP/agent.log"
rc=$(rc_of as runtime-member version)
og_check "a group held only at run time counts (SO_PEERGROUPS): version exit $rc" [ "$rc" = 0 ]
rc=$(rc_of as runtime-member uninstall)
og_check "...and is still only a reader: uninstall exit $rc" [ "$rc" = 1 ]
rc=$(rc_of as stranger status)
og_check "no group: cannot connect at all (exit $rc)" [ "$rc" = 2 ]
rc=$(rc_of as admin reload)
og_check "admin_group member: reload allowed (exit $rc)" [ "$rc" = 0 ]
og_check "reload logged with uid and pid" grep -Eq 'event=control.command cmd=reload force=false uid=65534 pid=[0-9]+' "$OG_TMP/agent.log"
rc=$(rc_of as admin refresh)
og_check "admin_group member: refresh allowed (exit $rc)" [ "$rc" = 0 ]
rc=$(rc_of as admin uninstall)
og_check "admin_group member: uninstall allowed (exit $rc)" [ "$rc" = 0 ]
og_check "root: reload allowed" ctl reload
# [control] changes apply at the next start: a reload the start would refuse is refused now.
sed -i 's/^admin_group = .*/admin_group = "og-no-such-group"/' "$OG_TMP/agent.toml"
rc=$(rc_of ctl reload)
og_check "reload naming a group that does not exist exits 1 (got $rc)" [ "$rc" = 1 ]
og_check "...saying why" grep -q 'admin_group "og-no-such-group" does not exist' "$OG_TMP/out"
write_config "$SOCK"
og_check "a good reload clears it" ctl reload
og_check "root's reload logged" grep -Eq 'event=control.command cmd=reload force=false uid=0 pid=[0-9]+' "$OG_TMP/agent.log"

# --- 2. a client that never reads its reply ------------------------------------------------
# A status reply larger than the socket buffers (40000 prefixes, ~700 KB) keeps the write
# pending; the server gives up after its write timeout (10 s) instead of holding it.
python3 - "$OG_TMP/ranges.json" <<'PY'
import json, sys
v4 = ["%d.%d.%d.0/24" % (20 + i // 65536, (i // 256) % 256, i % 256) for i in range(40000)]
json.dump({"result": {"ipv4_cidrs": v4, "ipv6_cidrs": ["2001:db8:cf::/48"]}, "success": True,
           "errors": [], "messages": []}, open(sys.argv[1], "w"))
PY
ctl refresh --force >/dev/null 2>&1 || og_fail "refresh with 40000 prefixes"
full=$(printf '{"cmd":"status"}\n' | ip netns exec "$NS" socat -t 30 - UNIX-CONNECT:"$SOCK" | wc -c)
read -r got how < <(ip netns exec "$NS" python3 "$CLIENTS" slow "$SOCK" status 13)
og_check "a reader that stalls 13 s gets a cut reply ($got of $full bytes, $how)" \
  [ "$how" = cut -a "$got" -lt "$full" -a "$full" -gt 500000 ]
og_check "...and the agent still answers" ctl version

# --- 3. out of descriptors: no spinning, fresh requests answered --------------------------
stop_agent
start_agent prlimit --nofile=64:64
# Measured within the 10 s in which an idle client may still send its request: later the
# agent drops idle sessions by itself.
og_bg ip netns exec "$NS" python3 "$CLIENTS" idle "$SOCK" 84 "$OG_TMP/idle.ready" "$OG_TMP/idle.stop"
og_wait_for 30 test -s "$OG_TMP/idle.ready" || og_fail "idle clients did not connect"
og_log "idle clients connected: $(cat "$OG_TMP/idle.ready") of 84 (RLIMIT_NOFILE 64)"
ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep 3
used_ms=$(( ($(ticks) - t0) * 1000 / hz ))
# A spinning accept loop burns ~3000 ms here; an idle agent a few ms.
og_check "agent CPU over 3 s with 84 idle clients: ${used_ms} ms (< 600)" [ "$used_ms" -lt 600 ]
og_check "a fresh version answers within 3 s meanwhile" timeout 3 ip netns exec "$NS" "$CTL" -s "$SOCK" version
fds=$(ls "/proc/$AGENT_PID/fd" | wc -l)
og_check "the agent keeps descriptors in reserve ($fds open of 64)" [ "$fds" -le 56 ]
og_check "agent still healthy enough to refresh" ctl refresh
touch "$OG_TMP/idle.stop"
stop_agent

# --- 4. socket directories someone else may write to --------------------------------------
for d in "ww:1777" "gw:0775"; do
  name=${d%%:*} mode=${d##*:}
  mkdir -p "$OG_TMP/$name" && chmod "$mode" "$OG_TMP/$name"
  write_config "$OG_TMP/$name/agent.sock"
  rc=$(rc_of "$AGENT" --config "$OG_TMP/agent.toml" --check-config)
  og_check "--check-config refuses a mode $mode socket directory (exit $rc)" [ "$rc" = 1 ]
  og_check "...saying why" grep -q "group- or world-writable" "$OG_TMP/out"
  rc=$(rc_of ip netns exec "$NS" timeout 20 "$AGENT" --config "$OG_TMP/agent.toml" --foreground)
  og_check "the agent refuses to start with it (exit $rc)" [ "$rc" = 1 ]
  og_check "...and made no socket there" [ ! -e "$OG_TMP/$name/agent.sock" ]
done
mkdir -p "$OG_TMP/nobody" && chown 65534 "$OG_TMP/nobody" && chmod 0755 "$OG_TMP/nobody"
write_config "$OG_TMP/nobody/agent.sock"
rc=$(rc_of "$AGENT" --config "$OG_TMP/agent.toml" --check-config)
og_check "--check-config refuses a socket directory of another user (exit $rc)" [ "$rc" = 1 ]
og_check "...saying why" grep -q "belongs to uid 65534" "$OG_TMP/out"

og_finish
