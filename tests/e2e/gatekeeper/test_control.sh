#!/usr/bin/env bash
# The gatekeeper's control socket through the real agentctl, next to a real agent (file://
# ranges, no enforcer, everything in the test's temp dir): per-host handshakes and refusals
# counted from real curl handshakes, active connections, certificate expiry (a certificate
# made to expire in 3 days degrades `agentctl status`), the global-CA warning, `agentctl
# reload` of both daemons (a new certificate for new handshakes while an established
# keep-alive connection keeps working; a broken config refused with file:line, the old one
# serving), metrics, a stale socket, and systemd socket activation (systemd-socket-activate
# passing the TCP port and the control socket, with sd_notify READY/RELOADING/STOPPING seen on
# a NOTIFY_SOCKET).
. "$(dirname "$0")/lib_gk.sh"
gk_init
CTL=${AGENTCTL:-$(dirname "$GK_BIN")/../agentctl}
AGENT=${AGENT_BIN:-$(dirname "$GK_BIN")/../originguard-agent}
[[ -x $CTL && -x $AGENT ]] || { echo "agentctl/originguard-agent not built ($CTL, $AGENT)" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq missing (scripts/install-deps.sh)" >&2; exit 1; }
gk_pki
gk_upstream http
GK_PORT=$(gk_free_port)
GK_SOCK=$T/gk.sock
AGENT_SOCK=$T/agent.sock
EDGE=(--cert "$P/edge.pem" --key "$P/edge.key")
export NO_COLOR=1

# A server certificate for x.test that expires in 3 days.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/srv-x.key" -out "$P/srv-x.csr" \
  -subj "/CN=x.test" 2>/dev/null
printf 'subjectAltName=DNS:x.test\nextendedKeyUsage=serverAuth\n' >"$P/srv-x.ext"
openssl x509 -req -in "$P/srv-x.csr" -CA "$P/srvca/ca.pem" -CAkey "$P/srvca/ca.key" -CAcreateserial -days 3 \
  -extfile "$P/srv-x.ext" -out "$P/srv-x.pem" 2>/dev/null

# --- the agent: ranges from a file, no enforcer (nor XDP), socket and state in $T ----------
cat >"$T/ranges.json" <<'JSON'
{"result": {"ipv4_cidrs": ["198.51.100.0/24", "192.0.2.0/25"], "ipv6_cidrs": ["2001:db8:cf::/48"]},
 "success": true, "errors": [], "messages": []}
JSON
cat >"$T/agent.toml" <<TOML
[ranges]
sources = ["file://$T/ranges.json"]
state_dir = "$T/state"
export_file = "$T/edge-ranges.json"
retry_min = "1h"

[control]
socket = "$AGENT_SOCK"

[nftables]
enabled = false

# This agent runs in the host's network namespace: XDP (on by default) would attach to the
# host's default-route interface.
[xdp]
enabled = false
TOML
gk_bg "$T/agent.log" "$AGENT" --config "$T/agent.toml" --foreground
for _ in $(seq 1 100); do [[ -S $AGENT_SOCK && -s $T/edge-ranges.json ]] && break; sleep 0.1; done

ctl() { "$CTL" -s "$AGENT_SOCK" --gatekeeper-socket "$GK_SOCK" "$@"; }
status_json() { ctl status --json 2>/dev/null || true; }
gks() { status_json | jq -r "$1"; }  # jq over the combined status
status_rc() { local rc=0; ctl status >/dev/null 2>&1 || rc=$?; echo "$rc"; }

# --- the gatekeeper ---------------------------------------------------------------------------
write_config() {  # a.test-cert [extra TOML]
  cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT"]
workers = 2
edge_ranges_file = "$T/edge-ranges.json"
control_socket = "$GK_SOCK"

[[host]]
names = ["a.test"]
cert = "$P/$1.pem"
key = "$P/$1.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$UP_PORT"

# the bundled global origin-pull CA, no pins: warned about, not degraded
[[host]]
names = ["h.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
upstream = "127.0.0.1:$UP_PORT"
${2:-}
TOML
}
write_config srv-a
gk_start
for _ in $(seq 1 50); do [[ -S $GK_SOCK ]] && break; sleep 0.1; done
expect_eq "control socket created, mode 0660" "660" "$(stat -c %a "$GK_SOCK" 2>/dev/null || true)"

# --- status: shape, healthy with only the global-CA warning ------------------------------------
expect_eq "status exits 0 (agent healthy, global-CA warning alone does not degrade)" 0 "$(status_rc)"
expect_eq "gatekeeper.running" true "$(gks .gatekeeper.running)"
expect_eq "gatekeeper.health" healthy "$(gks .gatekeeper.health)"
expect_eq "gatekeeper.pid is the gatekeeper's" "$GK_PID" "$(gks .gatekeeper.pid)"
expect_eq "gatekeeper.config_file" "$T/gk.toml" "$(gks .gatekeeper.config_file)"
expect_eq "gatekeeper.workers / listeners" "2 127.0.0.1:$GK_PORT config" \
  "$(gks '"\(.gatekeeper.workers) \(.gatekeeper.listeners[0].address) \(.gatekeeper.listeners[0].source)"')"
expect_eq "last_reload null before any reload" null "$(gks .gatekeeper.last_reload)"
expect_eq "a.test client_ca is its file, not pinned" "$P/global/ca.pem false" \
  "$(gks '.gatekeeper.hosts[0] | "\(.client_ca) \(.pinned)"')"
expect_eq "h.test relies on the global CA" "origin-pull (global) false" \
  "$(gks '.gatekeeper.hosts[1] | "\(.client_ca) \(.pinned)"')"
expect_match "h.test warning: global CA without pins" "global origin-pull CA without pins" \
  "$(gks '.gatekeeper.hosts[1].warnings[0]')"
expect_match "top-level warnings name the host" "^host h.test: client_ca is the global" "$(gks '.gatekeeper.warnings[0]')"
expect_eq "a.test has no warnings" 0 "$(gks '.gatekeeper.hosts[0].warnings | length')"
expect_match "a.test cert expiry: ISO date, ~365 days, no warning" \
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z 36[45] false$' \
  "$(gks '.gatekeeper.hosts[0].certs[0] | "\(.not_after) \(.days_left) \(.warning)"')"
human=$(ctl status 2>&1 || true)
expect_match "human status: gatekeeper section" "Gatekeeper 0\.[0-9.]+ +pid $GK_PID" "$human"
expect_match "human status: WARNING for the global CA without pins" "WARNING: relies on the global origin-pull CA" "$human"

# --- real handshakes, counted per host ---------------------------------------------------------
for i in 1 2 3; do expect_eq "edge cert to a.test ($i): 200" 200 "$(gk_curl a.test /c$i "${EDGE[@]}")"; done
for i in 1 2; do expect_eq "no client cert to a.test ($i): refused" 000 "$(gk_curl a.test /n$i)"; done
expect_eq "other zone's cert to a.test: refused" 000 "$(gk_curl a.test / --cert "$P/other.pem" --key "$P/other.key")"
expect_eq "a.test handshakes_ok" 3 "$(gks '.gatekeeper.hosts[0].handshakes_ok')"
expect_eq "a.test refusals.no_cert" 2 "$(gks '.gatekeeper.hosts[0].refusals.no_cert')"
expect_eq "a.test refusals.verify" 1 "$(gks '.gatekeeper.hosts[0].refusals.verify')"
expect_eq "h.test untouched" "0 0" "$(gks '.gatekeeper.hosts[1] | "\(.handshakes_ok) \(.refusals.no_cert)"')"
expect_match "human status: per-host handshakes and refusals" "3 ok; refused: 2 no cert, 1 verify" "$(ctl status 2>&1 || true)"

# --- an established keep-alive connection: active, and it survives the reload below -----------
gk_bg "$T/ka.log" python3 "$GK_HERE/keepalive_clients.py" "$GK_PORT" a.test 1 "$P/edge.pem" "$P/edge.key" \
  "$P/srvca/ca.pem" "$T/trigger"
KA_PID=$LAST_PID
for _ in $(seq 1 100); do grep -q phase1 "$T/ka.log" 2>/dev/null && break; sleep 0.1; done
expect_eq "keep-alive connection made its first request" "phase1 ok=1" "$(grep phase1 "$T/ka.log" || true)"
expect_eq "connections_active counts it" true "$(gks '.gatekeeper.connections_active >= 1')"
expect_eq "a.test active_connections" 1 "$(gks '.gatekeeper.hosts[0].active_connections')"

# --- agentctl reload: agent and gatekeeper; new cert for new handshakes -----------------------
old_fp=$(openssl x509 -in "$P/srv-a.pem" -noout -fingerprint -sha256)
new_fp=$(openssl x509 -in "$P/srv-a2.pem" -noout -fingerprint -sha256)
[[ $old_fp != "$new_fp" ]] || failcase "test PKI: srv-a and srv-a2 identical"
fp() { openssl s_client -connect "127.0.0.1:$GK_PORT" -servername a.test "${EDGE[@]}" </dev/null 2>/dev/null |
  openssl x509 -noout -fingerprint -sha256 2>/dev/null || true; }
expect_eq "before reload: the old certificate" "$old_fp" "$(fp)"
write_config srv-a2
rc=0; out=$(ctl reload 2>&1) || rc=$?
expect_eq "agentctl reload (agent + gatekeeper) exits 0" 0 "$rc"
expect_match "agentctl reload prints the agent's outcome" "reload: config $T/agent.toml applied" "$out"
expect_match "agentctl reload prints the gatekeeper's outcome" "gatekeeper reload: config $T/gk.toml applied \(2 hosts\)" "$out"
expect_eq "after reload: new handshakes get the new certificate" "$new_fp" "$(fp)"
expect_eq "last_reload: ok, by the control socket" "true control null" \
  "$(gks '.gatekeeper.last_reload | "\(.ok) \(.trigger) \(.error)"')"
# 3 curl + the keep-alive client + 2 s_client: not restarted from zero by the new generation
expect_eq "per-host counters survive the reload" 6 "$(gks '.gatekeeper.hosts[0].handshakes_ok')"
touch "$T/trigger"
wait "$KA_PID" || true
expect_eq "the established keep-alive connection kept working across the reload" "phase2 ok=1" \
  "$(grep phase2 "$T/ka.log" || true)"

# --- a certificate expiring in 3 days degrades status ------------------------------------------
write_config srv-a2 "[[host]]
names = [\"x.test\"]
cert = \"$P/srv-x.pem\"
key = \"$P/srv-x.key\"
client_ca = \"$P/global/ca.pem\"
upstream = \"127.0.0.1:$UP_PORT\""
rc=0; out=$(ctl gatekeeper reload 2>&1) || rc=$?
expect_eq "agentctl gatekeeper reload exits 0" 0 "$rc"
expect_match "reload lists the expiry warning" "warning: host x.test: certificate .*srv-x.pem expires in [23] days" "$out"
expect_eq "x.test cert: warning, days_left <= 3" "true true" \
  "$(gks '.gatekeeper.hosts[2].certs[0] | "\(.warning) \(.days_left <= 3)"')"
expect_eq "status exits 1 (degraded) with a certificate expiring in < 14 days" 1 "$(status_rc)"
expect_eq "gatekeeper.health degraded" degraded "$(gks .gatekeeper.health)"
human=$(ctl status 2>&1 || true)
expect_match "human status: expiry date and WARNING" "srv-x.pem  expires [0-9-]+T[0-9:]+Z \([23] days\)  WARNING: expires in under 14 days" "$human"
expect_match "stderr says why it is degraded" "degraded: gatekeeper host x.test: certificate .*srv-x.pem expires in" "$human"
rc=0; ctl gatekeeper status >/dev/null 2>&1 || rc=$?
expect_eq "agentctl gatekeeper status exits 1 too" 1 "$rc"

# --- a broken config: refused with file:line, the old one keeps serving ------------------------
write_config srv-a2 "[[host]]
names = [\"y.test\"]
cert = \"$P/srv-misc.pem\"
key = \"$P/srv-misc.key\"
mtls = \"sometimes\"
upstream = \"127.0.0.1:$UP_PORT\""
bad_line=$(grep -n 'mtls = "sometimes"' "$T/gk.toml" | cut -d: -f1)
rc=0; out=$(ctl reload 2>&1) || rc=$?
expect_eq "agentctl reload with a broken gatekeeper config exits 1" 1 "$rc"
expect_match "the refusal names file, line and reason" "$T/gk.toml:$bad_line: \[host\] mtls: expected one of" "$out"
expect_match "the agent's reload still applied" "reload: config $T/agent.toml applied" "$out"
expect_eq "old config keeps serving (200)" 200 "$(gk_curl a.test /still "${EDGE[@]}")"
expect_eq "old config keeps serving (same certificate)" "$new_fp" "$(fp)"
expect_eq "status: last_reload refused with the message" "false true" \
  "$(gks ".gatekeeper.last_reload | \"\(.ok) \(.error | startswith(\"$T/gk.toml:$bad_line:\"))\"")"
expect_match "human status shows the refused reload" "Last reload .*REFUSED: $T/gk.toml:$bad_line:" "$(ctl status 2>&1 || true)"
expect_match "a refused reload degrades status, like the agent's" "1 .*degraded: gatekeeper reload refused" \
  "$(rc=0; o=$(ctl status 2>&1 >/dev/null) || rc=$?; echo "$rc $o")"
# a missing key file: the policy error names the [[host]] table's line too
write_config srv-a2 "[[host]]
names = [\"y.test\"]
cert = \"$P/srv-misc.pem\"
key = \"$P/missing.key\"
upstream = \"127.0.0.1:$UP_PORT\""
host_line=$(grep -n 'names = \["y.test"\]' "$T/gk.toml" | cut -d: -f1)
rc=0; out=$(ctl gatekeeper reload 2>&1) || rc=$?
expect_match "missing key refused: file:line of the [[host]] and the key" \
  "1 .*$T/gk.toml:$((host_line - 1)): \[\[host\]\] y.test: key .*missing.key" "$rc $out"

# --- metrics -------------------------------------------------------------------------------------
m=$(ctl gatekeeper metrics 2>/dev/null || true)
expect_match "agentctl gatekeeper metrics: per-host handshakes" 'og_gk_handshakes_total\{host="a.test"\} 8' "$m"
m=$(ctl metrics 2>/dev/null || true)
expect_match "agentctl metrics: the agent's metrics" 'originguard_ranges_prefixes\{family="ipv4"\} 2' "$m"
expect_match "agentctl metrics: the gatekeeper's appended" 'og_gk_refusals_total\{host="a.test",reason="no_cert"\} 2' "$m"
expect_match "agentctl version names the gatekeeper" "gatekeeper 0\." "$(ctl version 2>&1 || true)"

# --- the gatekeeper stops: no socket, no effect; a stale socket: degraded ---------------------
kill "$GK_PID"
wait "$GK_PID" 2>/dev/null || true
expect_eq "SIGTERM removes the control socket" absent "$([[ -e $GK_SOCK ]] && echo present || echo absent)"
expect_eq "no gatekeeper socket: status exits 0 (not installed has no effect)" 0 "$(status_rc)"
expect_eq "no gatekeeper socket: {running: false}" false "$(gks .gatekeeper.running)"
rc=0; ctl gatekeeper status >/dev/null 2>&1 || rc=$?
expect_eq "agentctl gatekeeper status without a gatekeeper exits 2" 2 "$rc"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$GK_SOCK"
expect_eq "stale gatekeeper socket: status exits 1" 1 "$(status_rc)"
expect_match "stale gatekeeper socket: error shown" "cannot reach the gatekeeper" "$(gks .gatekeeper.error)"
rm -f "$GK_SOCK"

# --- systemd socket activation ------------------------------------------------------------------
SA_PORT=$(gk_free_port)
SA_SOCK=$T/gk-sa.sock
sed -e "s#^listen = .*#listen = []#" -e "s#^control_socket = .*#control_socket = \"$T/unused.sock\"#" "$T/gk.toml" |
  awk '/^\[\[host\]\]/ && ++n == 3 {exit} {print}' >"$T/gk-sa.toml"
gk_bg "$T/notify-recv.log" socat -u UNIX-RECV:"$T/notify.sock" OPEN:"$T/notify.log",creat,append
for _ in $(seq 1 50); do [[ -S $T/notify.sock ]] && break; sleep 0.1; done
# It listens on the port and on the control socket's path (as the .socket units do), and on
# the first connection execs the gatekeeper (same PID) with LISTEN_FDS=2.
gk_bg "$T/gk-sa.log" systemd-socket-activate -l "127.0.0.1:$SA_PORT" -l "$SA_SOCK" --fdname=https:control \
  -E NOTIFY_SOCKET="$T/notify.sock" "$GK_BIN" --config "$T/gk-sa.toml"
SA_PID=$LAST_PID
gk_wait_port "$SA_PORT"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$P/srvca/ca.pem" "${EDGE[@]}" \
  --resolve "a.test:$SA_PORT:127.0.0.1" "https://a.test:$SA_PORT/sa" 2>"$T/curl.err" || true)
expect_eq "socket-activated gatekeeper: handshake and request" 200 "$code"
expect_match "log: the passed socket was adopted" "gk_listen_adopted fd=3 address=127.0.0.1:$SA_PORT name=https" "$(cat "$T/gk-sa.log")"
expect_match "log: the passed control socket is served" "control.listening socket=$SA_SOCK fd=4 from=systemd" "$(cat "$T/gk-sa.log")"
expect_eq "control_socket of the config not created when systemd passes one" absent \
  "$([[ -e $T/unused.sock ]] && echo present || echo absent)"
expect_eq "status: the listener came from systemd" "127.0.0.1:$SA_PORT systemd" \
  "$("$CTL" --gatekeeper-socket "$SA_SOCK" gatekeeper status --json 2>/dev/null |
    jq -r '.listeners[0] | "\(.address) \(.source)"')"
for _ in $(seq 1 50); do grep -q READY=1 "$T/notify.log" 2>/dev/null && break; sleep 0.1; done
expect_match "sd_notify READY=1" "READY=1" "$(cat "$T/notify.log" 2>/dev/null || true)"
"$CTL" --gatekeeper-socket "$SA_SOCK" gatekeeper reload >/dev/null 2>&1 || true
expect_match "sd_notify RELOADING=1 on reload" "RELOADING=1" "$(cat "$T/notify.log" 2>/dev/null || true)"
kill "$SA_PID"
wait "$SA_PID" 2>/dev/null || true
for _ in $(seq 1 20); do grep -q STOPPING=1 "$T/notify.log" 2>/dev/null && break; sleep 0.1; done
expect_match "sd_notify STOPPING=1 on SIGTERM" "STOPPING=1" "$(cat "$T/notify.log" 2>/dev/null || true)"
gk_finish
