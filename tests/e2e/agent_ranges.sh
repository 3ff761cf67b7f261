#!/usr/bin/env bash
# e2e: the agent against a local HTTPS range server that answers well and badly.
# A bad answer must never replace the ranges in force, and `agentctl status` must say why.
source "$(dirname "$0")/lib.sh"
og_setup ranges

NS=$(og_netns ranges)
RS=$OG_TMP/rs
og_range_server "$NS" "$RS"
cp "$OG_TEST_DATA/test-edge-ips.json" "$RS/ranges.json"
echo good >"$RS/mode"

SOCK=$OG_TMP/agent.sock
STATE=$OG_TMP/state
write_config() {  # $1 = extra TOML appended to [ranges]
  cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["https://127.0.0.1:$RS_PORT/client/v4/ips"]
ca_file = "$RS/pki/ca.pem"
state_dir = "$STATE"
export_file = "$OG_TMP/export/edge-ranges.json"
connect_timeout = "2s"
total_timeout = "3s"
retry_min = "1h"
max_body_bytes = 65536
$1

$(og_toml_no_kernel "$SOCK")
TOML
}
write_config ""

ctl() { ip netns exec "$NS" "$CTL" -s "$SOCK" "$@"; }
st() { og_status "$NS" "$SOCK" "$1"; }
AGENT_PID=
start_agent() {
  ip netns exec "$NS" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
  AGENT_PID=$!
  OG_PIDS+=("$AGENT_PID")
  og_wait_for 10 ctl version
  og_wait_for 10 bash -c "[[ \$(ip netns exec $NS $CTL -s $SOCK status --json | jq -r .ranges.refreshing) == false ]]"
}
status_rc() { local rc=0; ctl status >/dev/null 2>&1 || rc=$?; echo $rc; }

# --- 1. first fetch -------------------------------------------------------------------
start_agent
og_check "source is the test server" [ "$(st .ranges.source)" = "https://127.0.0.1:$RS_PORT/client/v4/ips" ]
og_check "2 IPv4 + 1 IPv6 from the test ranges" [ "$(st '.ranges.ipv4,.ranges.ipv6' | tr '\n' ' ')" = "2 1 " ]
og_check "etag from the body" [ "$(st .ranges.etag)" = "test-etag-1" ]
og_check "fetched_at and age_s set" [ "$(st '.ranges.fetched_at != null and .ranges.age_s >= 0')" = "true" ]
og_check "next_refresh_s about an hour (+-10%)" [ "$(st '.ranges.next_refresh_s > 3200 and .ranges.next_refresh_s <= 3960')" = "true" ]
og_check "last_error null" [ "$(st .ranges.last_error)" = "null" ]
og_check "status exits 0 when healthy" [ "$(status_rc)" = 0 ]
og_check "status JSON has enforcers object and warnings list" [ "$(st '(.enforcers|type)+" "+(.warnings|type)')" = "object array" ]
og_check "last-known-good persisted" jq -e '.ipv4 == ["192.0.2.0/25","198.51.100.0/24"]' "$STATE/ranges.json"
og_check "range snapshot exported for the gatekeeper" jq -e '.ipv6 == ["2001:db8:cf::/48"]' "$OG_TMP/export/edge-ranges.json"
og_check "human status names the source" bash -c "ip netns exec $NS $CTL -s $SOCK status | grep -q 'Source .*127.0.0.1:$RS_PORT'"
og_check "socket is mode 0660" [ "$(stat -c %a "$SOCK")" = 660 ]

# --- 2. ETag / 304 ----------------------------------------------------------------------
: >"$RS/requests.log"
out=$(ctl refresh 2>&1) || true
og_check "second refresh is not_modified (304)" grep -q "not_modified" <<<"$out"
og_check "If-None-Match was sent" grep -q 'inm="' "$RS/requests.log"

# --- 3. bad answers never replace good ranges -------------------------------------------
GOOD_V4=2  # IPv4 prefixes in force before each bad answer
bad_case() {  # mode expected-text-in-last_error
  local mode=$1 want=$2 rc=0 out
  echo "$mode" >"$RS/mode"
  out=$(ctl refresh 2>&1) || rc=$?
  og_check "[$mode] refresh exits 1" [ "$rc" = 1 ]
  og_check "[$mode] last_error mentions '$want'" bash -c "ip netns exec $NS $CTL -s $SOCK status --json | jq -r .ranges.last_error | grep -qi -- '$want'"
  og_check "[$mode] good ranges stay ($GOOD_V4+1)" [ "$(st '.ranges.ipv4,.ranges.ipv6' | tr '\n' ' ')" = "$GOOD_V4 1 " ]
  og_check "[$mode] status exits 1 (degraded)" [ "$(status_rc)" = 1 ]
  og_check "[$mode] last-known-good file unchanged" jq -e ".ipv4 | length == $GOOD_V4" "$STATE/ranges.json"
}
bad_case 500 "HTTP 500"
bad_case 403html "HTTP 403 (HTML"
bad_case html200 "HTML"
bad_case fail "success:false (10000 Authentication error)"
bad_case truncated "not valid JSON"
bad_case empty "empty body"
bad_case badtype "Content-Type"
bad_case huge "exceeds 65536 bytes"

# slow body: the refresh times out while the control socket stays responsive
echo slow >"$RS/mode"
ctl refresh >/dev/null 2>&1 &
REFRESH_PID=$!
og_wait_for 5 bash -c "[[ \$(ip netns exec $NS $CTL -s $SOCK status --json | jq -r .ranges.refreshing) == true ]]"
og_check "[slow] status answers during a slow fetch" [ "$(st .ranges.refreshing)" = "true" ]
wait "$REFRESH_PID" || true
og_check "[slow] last_error says timed out" bash -c "ip netns exec $NS $CTL -s $SOCK status --json | jq -r .ranges.last_error | grep -q 'timed out'"
og_check "[slow] good ranges stay" [ "$(st .ranges.ipv4)" = 2 ]

# broad and non-canonical prefixes
echo good >"$RS/mode"
jq '.result.ipv4_cidrs += ["10.0.0.0/7"]' "$OG_TEST_DATA/test-edge-ips.json" >"$RS/ranges.json"
bad_case good "broader than /8"
jq '.result.ipv4_cidrs += ["203.0.113.5/24"]' "$OG_TEST_DATA/test-edge-ips.json" >"$RS/ranges.json"
bad_case good "host bits set"

# --- 4. recovery, growth, and the shrink guard ------------------------------------------
jq '.result.ipv4_cidrs = ["198.51.100.0/26","198.51.100.64/26","198.51.100.128/26","198.51.100.192/26","192.0.2.0/26","192.0.2.64/26"] | .result.etag = "six"' \
  "$OG_TEST_DATA/test-edge-ips.json" >"$RS/ranges.json"
ctl refresh >/dev/null 2>&1 || true
og_check "recovers: 6 IPv4 prefixes after a good answer" [ "$(st .ranges.ipv4)" = 6 ]
og_check "recovers: last_error cleared, exit 0" [ "$(st .ranges.last_error)/$(status_rc)" = "null/0" ]
cp "$OG_TEST_DATA/test-edge-ips.json" "$RS/ranges.json"   # 6 -> 2 IPv4 is a 67% shrink
GOOD_V4=6
bad_case good "shrink from 6 to 2"
ctl refresh --force >/dev/null 2>&1 || true
og_check "refresh --force accepts the shrink" [ "$(st .ranges.ipv4)/$(st .ranges.last_error)" = "2/null" ]

# a non-UTF-8 ETag header must not break status (JSON) or the state file
echo badetag >"$RS/mode"
ctl refresh --force >/dev/null 2>&1 || true
og_check "non-UTF-8 ETag: status still answers and is healthy" [ "$(status_rc)" = 0 ]
og_check "non-UTF-8 ETag: state file is valid JSON" jq -e . "$STATE/ranges.json"
echo good >"$RS/mode"

# --- 5. restart: last-known-good before any network access -------------------------------
echo 500 >"$RS/mode"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
og_check "SIGTERM removes the socket" [ ! -e "$SOCK" ]
rm -f "$STATE/ranges.json.tmp."*
# a stale last-known-good (older than the interval) is refreshed at start; the refresh fails
jq '.fetched_at -= 7200' "$STATE/ranges.json" >"$OG_TMP/lkg" && mv "$OG_TMP/lkg" "$STATE/ranges.json"
start_agent
og_check "restart keeps last-known-good (not the embedded snapshot)" \
  [ "$(st .ranges.source)" = "https://127.0.0.1:$RS_PORT/client/v4/ips" ]
og_check "restart: 2+1 ranges in force despite the failing source" [ "$(st '.ranges.ipv4,.ranges.ipv6' | tr '\n' ' ')" = "2 1 " ]
og_check "restart: failure shown" [ "$(status_rc)" = 1 ]

# --- 6. config reload: bad config refused, old one keeps running -------------------------
echo good >"$RS/mode"
ctl refresh >/dev/null 2>&1 || true
cp "$OG_TMP/agent.toml" "$OG_TMP/agent.toml.good"
printf '\n[protect]\nports = [80, 443]\nbogus_key = 1\n' >>"$OG_TMP/agent.toml"
rc=0; out=$(ctl reload 2>&1) || rc=$?
og_check "reload of a bad config exits 1" [ "$rc" = 1 ]
og_check "reload error names file, line and key" grep -q "agent.toml:[0-9]*: \[protect\] bogus_key: unknown key" <<<"$out"
reload_refused() {  # status exits 1 (degraded) here: read its JSON whatever the exit code
  local j
  j=$(ctl status --json 2>/dev/null || true)
  jq -e '[.warnings[] | select(test("config reload refused"))] | length == 1' <<<"$j"
}
og_check "bad reload shows as a warning" reload_refused
rc=0; out=$("$AGENT" --config "$OG_TMP/agent.toml" --check-config 2>&1) || rc=$?
og_check "--check-config refuses it with file:line" bash -c "[[ $rc == 1 ]] && grep -q 'agent.toml:[0-9]*: \[protect\] bogus_key' <<<'$out'"
cp "$OG_TMP/agent.toml.good" "$OG_TMP/agent.toml"
og_check "reload of a good config succeeds" ctl reload
og_check "warning cleared after a good reload" [ "$(status_rc)" = 0 ]
# SIGHUP on its own (the warning is clear now, so only the signal can set it again).
cp "$OG_TMP/agent.toml" "$OG_TMP/agent.toml.good"
printf '\n[protect]\nports = [80, 443]\nbogus_key = 1\n' >>"$OG_TMP/agent.toml"
kill -HUP "$AGENT_PID"
og_check "SIGHUP with a bad config: refused, shown as a warning" og_wait_for 10 reload_refused
og_check "SIGHUP with a bad config: agent still serving" ctl version
cp "$OG_TMP/agent.toml.good" "$OG_TMP/agent.toml"
kill -HUP "$AGENT_PID"
healthy() { [ "$(status_rc)" = 0 ]; }
og_check "SIGHUP with a good config: the warning is cleared" og_wait_for 10 healthy
og_check "--check-config accepts a good file" "$AGENT" --config "$OG_TMP/agent.toml" --check-config

# --- 7. text endpoints as one union source -----------------------------------------------
printf '198.51.100.0/24\n192.0.2.0/25\n2001:db8:cf::/48' >"$RS/ranges.txt"   # no final newline
echo text >"$RS/mode"
write_config "" && sed -i "s#^sources = .*#sources = [[\"https://127.0.0.1:$RS_PORT/ips-v4\", \"https://127.0.0.1:$RS_PORT/ips-v6\"]]#" "$OG_TMP/agent.toml"
ctl reload >/dev/null
og_wait_for 10 bash -c "[[ \$(ip netns exec $NS $CTL -s $SOCK status --json | jq -r .ranges.source) == *ips-v4*ips-v6* ]]"
og_check "text endpoints: union source" bash -c "ip netns exec $NS $CTL -s $SOCK status --json | jq -r .ranges.source | grep -q 'ips-v4 + '"
og_check "text endpoints: 2+1 prefixes, no merged garbage" [ "$(st '.ranges.ipv4,.ranges.ipv6' | tr '\n' ' ')" = "2 1 " ]

# --- 8. explain ----------------------------------------------------------------------------
og_check "explain: edge host accepted by its prefix" bash -c \
  "ip netns exec $NS $CTL -s $SOCK explain 198.51.100.7 443 --json | jq -e '.verdict==\"accept\" and .list==\"edge\" and .matched==\"198.51.100.0/24\"'"
og_check "explain: unprotected port is accepted" bash -c \
  "ip netns exec $NS $CTL -s $SOCK explain 203.0.113.9 8080 --json | jq -e '.verdict==\"accept\" and (.reason|test(\"not protected\"))'"
og_check "explain: attacker without enforcer says so" bash -c \
  "ip netns exec $NS $CTL -s $SOCK explain 2001:db8:bad::1 443 --json | jq -e '.list==\"none\" and (.reason|test(\"no enforcer\"))'"
og_check "explain: bad address refused (exit 1)" bash -c "! ip netns exec $NS $CTL -s $SOCK explain 300.1.1.1 443"

# --- 9. systemd manners: READY=1 and WATCHDOG=1 reach $NOTIFY_SOCKET ----------------------
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
og_bg socat -u UNIX-RECV:"$OG_TMP/notify.sock" OPEN:"$OG_TMP/notify.log",creat,append
og_wait_for 5 test -S "$OG_TMP/notify.sock"
ip netns exec "$NS" env NOTIFY_SOCKET="$OG_TMP/notify.sock" WATCHDOG_USEC=400000 \
  "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
AGENT_PID=$!; OG_PIDS+=("$AGENT_PID")
og_wait_for 10 ctl version
og_check "sd_notify READY=1 sent" og_wait_for 5 grep -q 'READY=1' "$OG_TMP/notify.log"
og_check "sd_notify WATCHDOG=1 sent every WATCHDOG_USEC/2" og_wait_for 5 grep -q 'WATCHDOG=1' "$OG_TMP/notify.log"

# --- 10. access control and unreachable agent ---------------------------------------------
rc=0; ip netns exec "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" -s "$SOCK" status >/dev/null 2>&1 || rc=$?
og_check "an unprivileged user cannot use the socket" [ "$rc" = 2 ]
og_check "metrics are Prometheus text" bash -c "ip netns exec $NS $CTL -s $SOCK metrics | grep -q '^originguard_ranges_prefixes{family=\"ipv4\"} 2'"
kill "$AGENT_PID"; wait "$AGENT_PID"; rc=$?
og_check "SIGTERM: clean exit 0" [ "$rc" = 0 ]
rc=0; ctl status >/dev/null 2>&1 || rc=$?
og_check "status exits 2 when the agent is unreachable" [ "$rc" = 2 ]

og_finish
