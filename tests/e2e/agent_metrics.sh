#!/usr/bin/env bash
# e2e: [metrics] listen. The agent (nftables on, in its own namespace) serves the text of
# `agentctl metrics` on GET /metrics at the configured address and no other; promtool accepts
# it; the enforcer, reload and drift families move when packets are dropped, reloads happen
# and someone deletes the table; idle connections cannot lock a scrape out; a changed address
# moves the listener, an address not yet on the host is a warning until it appears.
source "$(dirname "$0")/lib.sh"
og_setup metrics
command -v promtool >/dev/null || { echo "SKIP: promtool missing (scripts/install-deps.sh)"; exit 77; }

NS=$(og_netns metrics)
PEER=$(og_netns peer)
og_veth "$NS" 198.51.100.1/24 "$PEER" 198.51.100.2/24 >/dev/null
ip -n "$PEER" addr add 203.0.113.9/32 dev lo  # an attacker's address behind the edge network
ip -n "$PEER" route add default via 198.51.100.1 2>/dev/null || true
ip -n "$NS" route add 203.0.113.9/32 via 198.51.100.2
SOCK=$OG_TMP/agent.sock
write_config() {  # $1: [metrics] listen value
  cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["file://$OG_TEST_DATA/test-edge-ips.json"]
state_dir = "$OG_TMP/state"
export_file = ""

[protect]
ports = [443]
verify_interval = "1s"

[control]
socket = "$SOCK"

[xdp]
enabled = false  # the layer under test is nftables; XDP would pin in the host's bpffs

[metrics]
listen = "$1"
TOML
}
write_config "127.0.0.1:9463"
ctl() { ip netns exec "$NS" "$CTL" -s "$SOCK" --gatekeeper-socket "$OG_TMP/none.sock" "$@"; }
scrape() { ip netns exec "$NS" curl -sS -m 5 "$@"; }
metric() {  # NAME{LABELS} -> its value in a scrape of 127.0.0.1:9463 (or $2)
  scrape "http://${2:-127.0.0.1:9463}/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

ip netns exec "$NS" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
AGENT_PID=$!
OG_PIDS+=("$AGENT_PID")
og_wait_for 10 ctl version
og_wait_for 10 bash -c "ip netns exec $NS nft list table inet originguard"

# --- 1. what it serves, and where -------------------------------------------------------------
listening() { [[ $(scrape -o /dev/null -w '%{http_code}' http://127.0.0.1:9463/metrics) == 200 ]]; }
og_check "GET /metrics answers 200" og_wait_for 10 listening
scrape -D "$OG_TMP/headers" -o "$OG_TMP/scrape.txt" http://127.0.0.1:9463/metrics
og_check "Content-Type is the text format 0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$OG_TMP/headers"
ctl metrics >"$OG_TMP/agentctl.txt"
same_shape() { cmp -s <(sed 's/ [^ ]*$//' "$OG_TMP/scrape.txt") <(sed 's/ [^ ]*$//' "$OG_TMP/agentctl.txt"); }
og_check "the same families and series as agentctl metrics" same_shape
og_check "promtool check metrics accepts it" bash -c "promtool check metrics <'$OG_TMP/scrape.txt'"
for m in originguard_ranges_source_info originguard_config_reloads_total originguard_enforcer_applies_total \
  originguard_enforcer_last_apply_duration_seconds originguard_enforcer_drift_repairs_total \
  originguard_enforcer_packets_total originguard_enforcer_bytes_total originguard_healthy; do
  og_check "has $m (HELP, TYPE, a sample)" bash -c "grep -q '^# HELP $m ' '$OG_TMP/scrape.txt' &&
    grep -q '^# TYPE $m ' '$OG_TMP/scrape.txt' && grep -q '^$m[{ ]' '$OG_TMP/scrape.txt'"
done
og_check "source_info names the file source" \
  grep -qx "originguard_ranges_source_info{source=\"file://$OG_TEST_DATA/test-edge-ips.json\"} 1" "$OG_TMP/scrape.txt"
og_check "applies_total{nftables,ok} counts the start's apply" \
  bash -c "awk '\$1 == \"originguard_enforcer_applies_total{enforcer=\\\"nftables\\\",result=\\\"ok\\\"}\" && \$2 >= 1 {f=1} END {exit !f}' '$OG_TMP/scrape.txt'"
refused() { ! ip netns exec "$NS" curl -s -m 3 -o /dev/null "$1"; }
og_check "not on the namespace's other address (198.51.100.1:9463)" refused http://198.51.100.1:9463/metrics
og_check "not on IPv6 loopback ([::1]:9463)" refused "http://[::1]:9463/metrics"
og_check "one listener on 9463, 127.0.0.1" \
  [ "$(ip netns exec "$NS" ss -Hltn 'sport = :9463' | awk '{print $4}')" = "127.0.0.1:9463" ]
code() { scrape -o /dev/null -w '%{http_code}' "$@"; }
og_check "HEAD /metrics: 200, no body" bash -c "[[ \$(ip netns exec $NS curl -s -m 5 -I -o /dev/null -w '%{http_code} %{size_download}' http://127.0.0.1:9463/metrics) == '200 0' ]]"
og_check "GET / is 404" [ "$(code http://127.0.0.1:9463/)" = 404 ]
og_check "POST /metrics is 405" [ "$(code -X POST -d x http://127.0.0.1:9463/metrics)" = 405 ]
og_check "a 10 KB header is refused (431)" [ "$(code -H "X-Big: $(head -c 10000 /dev/zero | tr '\0' a)" http://127.0.0.1:9463/metrics)" = 431 ]

# --- 2. the counters move ----------------------------------------------------------------------
DROP='originguard_enforcer_packets_total{enforcer="nftables",verdict="drop"}'
before=$(metric "$DROP")
for _ in 1 2 3; do ip netns exec "$PEER" curl -s -m 1 --interface 203.0.113.9 -o /dev/null https://198.51.100.1/ || true; done
dropped() { (($(metric "$DROP") > before)); }
og_check "packets a stranger sends to a protected port are counted as drop ($before -> more)" og_wait_for 10 dropped
OKR='originguard_config_reloads_total{result="ok"}'
BADR='originguard_config_reloads_total{result="refused"}'
ctl reload >/dev/null
echo "bogus = 1" >>"$OG_TMP/agent.toml"
ctl reload >/dev/null 2>&1 || true
write_config "127.0.0.1:9463"
reloads() { [[ $(metric "$OKR")/$(metric "$BADR") == 1/1 ]]; }
og_check "config_reloads_total: ok 1, refused 1" og_wait_for 10 reloads
ctl reload >/dev/null  # clears the refusal's warning
REP='originguard_enforcer_drift_repairs_total{enforcer="nftables"}'
ip netns exec "$NS" nft delete table inet originguard
repaired() { (($(metric "$REP") >= 1)); }
og_check "a deleted table is repaired and counted" og_wait_for 10 repaired

# --- 3. idle connections cannot lock a scrape out; the agent's descriptors stay bounded ------
fds() { ls "/proc/$AGENT_PID/fd" | wc -l; }
base=$(fds)
ip netns exec "$NS" "$OG_PYTHON" -c '
import socket, time
held = []
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", 9463))
    s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
    held.append(s)
time.sleep(60)' &
SLOW=$!
OG_PIDS+=("$SLOW")
sleep 1  # the 100 connections are made (each is refused room or takes the oldest one's)
og_check "a scrape gets through 100 held connections" [ "$(code http://127.0.0.1:9463/metrics)" = 200 ]
og_check "the control socket answers meanwhile" ctl version
now=$(fds)
og_check "agent descriptors: $base before, $now with 100 held (at most 8 more)" [ "$now" -le $((base + 8)) ]
kill "$SLOW" 2>/dev/null; wait "$SLOW" 2>/dev/null || true

# --- 4. reload moves the listener; off closes it; an address not on the host waits for it ---
write_config "127.0.0.1:9464"
ctl reload >/dev/null
og_check "reload to :9464: it answers there" og_wait_for 10 bash -c "[[ \$(ip netns exec $NS curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9464/metrics) == 200 ]]"
og_check "... and no longer on :9463" refused http://127.0.0.1:9463/metrics
write_config ""
ctl reload >/dev/null
og_check "listen = \"\": closed" og_wait_for 10 refused http://127.0.0.1:9464/metrics
write_config "192.0.2.99:9463"
ctl reload >/dev/null
has_listen_warning() {
  { ctl status --json 2>/dev/null || true; } | jq -e '[.warning_details[] | select(.id == "metrics.listen_failed"
    and (.text | test("192.0.2.99:9463.*Cannot assign requested address")))] | length == 1' >/dev/null
}
og_check "an address not on the host: warning metrics.listen_failed" og_wait_for 10 has_listen_warning
ip -n "$NS" addr add 192.0.2.99/32 dev lo
up_there() { [[ $(ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' http://192.0.2.99:9463/metrics) == 200 ]]; }
og_check "once the address appears it listens (next verify cycle)" og_wait_for 10 up_there
og_check "... and the warning is gone" og_wait_for 10 bash -c "! ip netns exec $NS $CTL -s $SOCK status --json | jq -e '.warning_details[] | select(.id == \"metrics.listen_failed\")'"

og_finish
