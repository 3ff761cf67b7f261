#!/usr/bin/env bash
# e2e: both control sockets abused — the agent's (real nftables in the test's namespace) and
# the gatekeeper's — with:
#   - garbage (4 KiB of random bytes, a pipelined `uninstall` after them);
#   - a request naming "cmd" twice (status, then uninstall or reload);
#   - a 10 MB request line;
#   - a half-written request, then a close;
#   - requests whose sender hangs up before the reply (the server writes to a closed socket);
#   - a uid that may not connect: the kernel refuses it, and with the socket file opened to
#     everyone (as a careless SocketMode= would) the server refuses it by its credentials;
#   - 1,000 concurrent idle connections (OG_ABUSE_IDLE).
# Each is refused without effect (the table stays, no reload happens, no command is logged as
# run), the daemon keeps answering `status`, and its descriptor count (/proc/PID/fd) comes
# back to the baseline taken after its start.
source "$(dirname "$0")/lib.sh"
og_setup abuse
GK=$OG_BUILD/gatekeeper/originguard-gatekeeper
[[ -x $AGENT && -x $CTL && -x $GK ]] || { og_log "SKIP: originguard-agent/agentctl/gatekeeper not built"; exit 77; }
RO_GROUP=users
getent group $RO_GROUP >/dev/null || { og_log "SKIP: group $RO_GROUP is needed"; exit 77; }
CLIENTS=$OG_ROOT/tests/tools/control_clients.py
IDLE=${OG_ABUSE_IDLE:-1000}

NS=$(og_netns abuse)
chmod 0711 "$OG_TMP"  # uid 65534 may reach the sockets (and be refused by them)
mkdir -p "$OG_TMP/run" "$OG_TMP/gk"
chmod 0755 "$OG_TMP/run" "$OG_TMP/gk"
SOCK=$OG_TMP/run/agent.sock
GK_SOCK=$OG_TMP/gk/gk.sock
cat >"$OG_TMP/ranges.json" <<'JSON'
{"result": {"ipv4_cidrs": ["198.51.100.0/24"], "ipv6_cidrs": ["2001:db8:cf::/48"]},
 "success": true, "errors": [], "messages": []}
JSON
cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["file://$OG_TMP/ranges.json"]
state_dir = "$OG_TMP/state"
export_file = "$OG_TMP/edge-ranges.json"
retry_min = "1h"

[protect]
ports = [443]

[control]
socket = "$SOCK"
group = "$RO_GROUP"
TOML
og_test_pki "$OG_TMP/pki"
cat >"$OG_TMP/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:8443"]
workers = 2
edge_ranges_file = "$OG_TMP/edge-ranges.json"
control_socket = "$GK_SOCK"
control_group = "$RO_GROUP"

[[host]]
names = ["localhost"]
cert = "$OG_TMP/pki/server.pem"
key = "$OG_TMP/pki/server.key"
upstream = "127.0.0.1:9"
TOML

ip netns exec "$NS" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
AGENT_PID=$!
OG_PIDS+=("$AGENT_PID")
ip netns exec "$NS" "$GK" --config "$OG_TMP/gk.toml" 2>>"$OG_TMP/gk.log" &
GK_PID=$!
OG_PIDS+=("$GK_PID")

# Whatever the exit code (1 = degraded), the JSON decides.
agent_status() {
  { ip netns exec "$NS" "$CTL" -s "$SOCK" status --json 2>/dev/null || true; } | jq -e '.health == "healthy"' >/dev/null
}
gk_status() {
  { ip netns exec "$NS" "$CTL" --gatekeeper-socket "$GK_SOCK" gatekeeper status --json 2>/dev/null || true; } |
    jq -e ".pid == $GK_PID and .last_reload == null" >/dev/null
}
table_ours() { [[ $(ip netns exec "$NS" nft list table inet originguard 2>/dev/null) == *"managed by originguard-agent"* ]]; }
og_wait_for 10 agent_status ||
  { og_fail "agent did not start: $(ip netns exec "$NS" "$CTL" -s "$SOCK" status 2>&1 | tail -5)"; exit 1; }
og_wait_for 10 gk_status || { og_fail "gatekeeper did not start: $(tail -3 "$OG_TMP/gk.log")"; exit 1; }
og_wait_for 5 table_ours || og_fail "table not applied"

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# Idle daemons: the count settles after the first status (lazy opens) and after the XDP
# enforcer's first generation swap (the old generation's descriptors go a moment later); take
# it once three reads in a row agree. A case passes when the count is back at or below it: a
# leak shows as more.
declare -A PID=([agent]=$AGENT_PID [gatekeeper]=$GK_PID) SOCKET=([agent]=$SOCK [gatekeeper]=$GK_SOCK)
settled_fds() {
  local last=-1 same=0 n i
  for ((i = 0; i < 40 && same < 3; i++)); do
    n=$(fds "$1")
    if [[ $n == "$last" ]]; then same=$((same + 1)); else same=1 last=$n; fi
    sleep 0.25
  done
  echo "$last"
}
declare -A BASE=([agent]=$(settled_fds "$AGENT_PID") [gatekeeper]=$(settled_fds "$GK_PID"))
og_log "descriptor baselines: agent ${BASE[agent]}, gatekeeper ${BASE[gatekeeper]}"
at_baseline() { (($(fds "${PID[$1]}") <= BASE[$1])); }
# no_effect DAEMON CASE: nothing happened, status answers, descriptors back to the baseline
no_effect() {
  local d=$1 c=$2
  if [[ $d == agent ]]; then
    og_check "[$d $c] status still answers, healthy" agent_status
    og_check "[$d $c] no effect: the table is in place, nothing ran" \
      bash -c "$(declare -f table_ours); NS=$NS table_ours && ! grep -q 'event=control.command' $OG_TMP/agent.log && ! grep -q 'event=nft.uninstall' $OG_TMP/agent.log"
  else
    og_check "[$d $c] status still answers, no reload happened" gk_status
    og_check "[$d $c] no effect: no command logged as run" bash -c "! grep -q 'event=control.command' $OG_TMP/gk.log"
  fi
  og_check "[$d $c] descriptors back to at most ${BASE[$d]} (now $(fds "${PID[$d]}"))" og_wait_for 15 at_baseline "$d"
}
client() { ip netns exec "$NS" "$OG_PYTHON" "$CLIENTS" "$@"; }
# $OG_PYTHON (/usr/bin/python3): a python3 on root's PATH may live where uid 65534 cannot read.
stranger() { ip netns exec "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups "$OG_PYTHON" "$CLIENTS" "$@"; }
# refused REGEX REPLY: an {"ok":false} reply whose error matches REGEX
refused() { jq -e --arg re "$1" '.ok == false and (.error | test($re))' <<<"$2" >/dev/null 2>&1; }

for d in agent gatekeeper; do
  s=${SOCKET[$d]}
  # uninstall for the agent, reload for the gatekeeper: what garbage must not smuggle in
  cmd=$([[ $d == agent ]] && echo uninstall || echo reload)

  out=$(client garbage "$s" 7)
  og_check "[$d garbage] refused: $out" refused "not a JSON object" "$out"
  no_effect $d garbage

  # the first "cmd" read by whoever looks at the line, the second run by a last-key-wins parser
  out=$(client request "$s" "{\"cmd\":\"status\",\"cmd\":\"$cmd\"}")
  og_check "[$d duplicate cmd] refused: $out" refused "duplicate key" "$out"
  no_effect $d "duplicate cmd"

  out=$(client bigline "$s" 10)
  # the reply, or a reset when the server closes with the rest of the line unread
  og_check "[$d 10 MB line] refused: ${out:0:80}" \
    bash -c "[[ '$out' == 'error ECONNRESET' ]] || jq -e '.ok == false and .error == \"request too large\"' <<<'$out'"
  no_effect $d "10 MB line"

  out=$(client half "$s")
  og_check "[$d half-written request] sent and closed" [ "$out" = sent ]
  no_effect $d "half-written"

  out=$(client hangup "$s" 20)
  og_check "[$d request, then hang up before the reply] 20 times" [ "$out" = sent ]
  no_effect $d "hang-ups"

  out=$(stranger request "$s" "{\"cmd\":\"$cmd\"}")
  og_check "[$d uid 65534, no group] cannot connect: $out" [ "$out" = "error EACCES" ]
  no_effect $d "uid 65534"
  # The server's own check, behind the file mode: a socket file anyone may open.
  chmod 0666 "$s"
  for c in "$cmd" status; do
    out=$(stranger request "$s" "{\"cmd\":\"$c\"}")
    og_check "[$d uid 65534, socket 0666] $c refused by the server: ${out:0:90}" refused "^permission denied" "$out"
  done
  chmod 0660 "$s"
  og_check "[$d uid 65534] the refusal is logged with its uid" grep -q "event=control.denied cmd=$cmd uid=65534" "$OG_TMP/$([[ $d == agent ]] && echo agent || echo gk).log"
  no_effect $d "uid 65534, socket 0666"

  rm -f "$OG_TMP/idle.ready" "$OG_TMP/idle.stop"
  og_bg ip netns exec "$NS" "$OG_PYTHON" "$CLIENTS" idle "$s" "$IDLE" "$OG_TMP/idle.ready" "$OG_TMP/idle.stop"
  IDLE_PID=$!
  og_wait_for 120 test -s "$OG_TMP/idle.ready" || og_fail "[$d idle] the clients did not finish connecting"
  held=$(fds "${PID[$d]}")
  og_log "[$d idle] $(cat "$OG_TMP/idle.ready") of $IDLE idle connections made; the daemon holds $held descriptors"
  og_check "[$d idle] all $IDLE connected (one after the other, the server evicting the oldest)" [ "$(cat "$OG_TMP/idle.ready")" = "$IDLE" ]
  og_check "[$d idle] the daemon holds at most 64 sessions ($held descriptors, baseline ${BASE[$d]})" [ "$held" -le $((BASE[$d] + 64)) ]
  if [[ $d == agent ]]; then
    og_check "[$d idle] status answers within 5 s meanwhile" \
      bash -c "{ timeout 5 ip netns exec $NS $CTL -s $s status --json || true; } | jq -e .health"
  else
    og_check "[$d idle] status answers within 5 s meanwhile" \
      bash -c "{ timeout 5 ip netns exec $NS $CTL --gatekeeper-socket $s gatekeeper status --json || true; } | jq -e '.pid == $GK_PID'"
  fi
  touch "$OG_TMP/idle.stop"
  wait "$IDLE_PID" 2>/dev/null || true
  no_effect $d "$IDLE idle"
done

kill -TERM "$AGENT_PID" "$GK_PID"
wait "$AGENT_PID" "$GK_PID" 2>/dev/null || true
og_finish
