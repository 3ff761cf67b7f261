#!/usr/bin/env bash
# Bounded soak of both layers (docs/TESTING.md "Soak"): OG_SOAK_SECONDS (45 by default, the
# ctest e2e_soak form; at most 600, the documented long form) of continuous good and bad
# traffic through the agent (nftables + XDP in native mode) and the gatekeeper behind it,
# while the served ranges churn (local HTTPS range server, a refresh every 3 s) and the
# gatekeeper reloads every 5 s. RSS and fd counts of both daemons are sampled at the start,
# the middle and the end; it fails on growth beyond the bounds below and on any wrong verdict.
#   good: the edge address with the edge client certificate -> 200
#   bad:  an attacker address (dropped by XDP); the edge address without a client certificate
#         and with one of another CA (refused in the handshake)
# Usage: OG_BUILD=build [OG_SOAK_SECONDS=600] scripts/soak.sh   (root; exit 77 without)
SOAK_S=${OG_SOAK_SECONDS:-45}
((SOAK_S >= 10 && SOAK_S <= 600)) || { echo "OG_SOAK_SECONDS must be 10..600" >&2; exit 2; }
# Growth allowed from the start sample to the end one: RSS (KiB), descriptors.
RSS_BOUND_KB=${OG_SOAK_RSS_KB:-8192}
FD_BOUND=${OG_SOAK_FDS:-4}
# shellcheck source=../tests/e2e/xdp/lib_xdp.sh
source "$(dirname "$0")/../tests/e2e/xdp/lib_xdp.sh"
og_setup soak
GK_BIN=${GK_BIN:-$OG_BUILD/gatekeeper/originguard-gatekeeper}
[[ -x $AGENT && -x $CTL && -x $GK_BIN ]] || { og_log "SKIP: agent, agentctl or gatekeeper not built"; exit 77; }
# The gatekeeper tests' PKI (edge, other-zone client certificates; server certificates).
# shellcheck source=../tests/e2e/gatekeeper/lib_gk.sh
source "$OG_ROOT/tests/e2e/gatekeeper/lib_gk.sh"
T=$OG_TMP/gk
mkdir -p "$T"
gk_pki
xdp_topology soak
GK_TLS_PORT=8443

# --- ranges: the edge networks always, plus 2000 random prefixes that change every time --
RS=$OG_TMP/rs
og_range_server "$ORIGIN" "$RS"
gen=0
serve_next() {
  gen=$((gen + 1))
  "$OG_PYTHON" "$OG_ROOT/tests/tools/gen_ranges.py" 2000 "$gen" "$OG_TMP/gen.json"
  jq '.result.ipv4_cidrs += ["198.51.100.0/24"] | .result.ipv6_cidrs += ["2001:db8:cf::/48"]' "$OG_TMP/gen.json" \
    >"$RS/ranges.json.tmp" && mv "$RS/ranges.json.tmp" "$RS/ranges.json"
}
serve_next
SOCK=$OG_TMP/agent.sock
cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["https://127.0.0.1:$RS_PORT/client/v4/ips"]
ca_file = "$RS/pki/ca.pem"
state_dir = "$OG_TMP/state"
export_file = "$OG_TMP/edge-ranges.json"
refresh_interval = "3s"
jitter = 0.0
retry_min = "1s"
max_shrink = 1.0

[protect]
ports = [$PROTECTED_PORT, $GK_TLS_PORT]

[control]
socket = "$SOCK"

[xdp]
interfaces = ["ogxe", "ogxa"]
mode = "native"
pin_dir = "$PIN_DIR"
TOML
ip netns exec "$ORIGIN" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
AGENT_PID=$!
OG_PIDS+=("$AGENT_PID")
st() { og_status "$ORIGIN" "$SOCK" "$1" || true; }
og_wait_for 20 test -s "$OG_TMP/edge-ranges.json" || { og_fail "agent did not export its ranges"; og_finish; exit 1; }
og_check "agent: both layers enforcing" og_wait_for 20 bash -c \
  "[[ \$(ip netns exec $ORIGIN $CTL -s $SOCK status --json | jq -r '\"\(.enforcers.nftables.state) \(.enforcers.xdp.state)\"') == 'enforcing enforcing' ]]"

# --- the gatekeeper behind it: its edge snapshot is the agent's export ----------------------
UP_PORT=$(gk_free_port)
og_bg ip netns exec "$ORIGIN" python3 "$OG_ROOT/tests/e2e/gatekeeper/upstream.py" http "$UP_PORT"
cat >"$OG_TMP/gk.toml" <<TOML
[gatekeeper]
listen = ["0.0.0.0:$GK_TLS_PORT"]
workers = 2
control_socket = "$OG_TMP/gk.sock"
edge_ranges_file = "$OG_TMP/edge-ranges.json"

[[host]]
names = ["h.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
upstream = "127.0.0.1:$UP_PORT"
client_ca = "$P/global/ca.pem"
require_edge_ip = true
TOML
ip netns exec "$ORIGIN" "$GK_BIN" --config "$OG_TMP/gk.toml" 2>>"$OG_TMP/gk.log" &
GK_PID=$!
OG_PIDS+=("$GK_PID")
curl_to() {  # ns [curl args]: the HTTP code (000: refused or dropped)
  local ns=$1
  shift
  ip netns exec "$ns" curl -sS -o /dev/null -w '%{http_code}' --connect-timeout 1 --max-time 5 \
    --cacert "$P/srvca/ca.pem" --resolve "h.test:$GK_TLS_PORT:$ORIGIN_E4" --resolve "a.test:$GK_TLS_PORT:$ORIGIN_A4" \
    "$@" 2>/dev/null || true
}
good() { curl_to "$EDGE" --cert "$P/edge.pem" --key "$P/edge.key" "https://h.test:$GK_TLS_PORT/"; }
og_check "gatekeeper serves the edge" og_wait_for 20 bash -c "[[ \$(ip netns exec $EDGE curl -s -o /dev/null -w '%{http_code}' --cacert $P/srvca/ca.pem --resolve h.test:$GK_TLS_PORT:$ORIGIN_E4 --cert $P/edge.pem --key $P/edge.key https://h.test:$GK_TLS_PORT/) == 200 ]]"

# --- samples ---------------------------------------------------------------------------
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
declare -A S=()
sample() {  # label
  S[$1-agent-rss]=$(rss "$AGENT_PID") S[$1-agent-fd]=$(fds "$AGENT_PID")
  S[$1-gk-rss]=$(rss "$GK_PID") S[$1-gk-fd]=$(fds "$GK_PID")
  og_log "sample $1: agent RSS ${S[$1-agent-rss]} KiB, ${S[$1-agent-fd]} fds; gatekeeper RSS ${S[$1-gk-rss]} KiB, ${S[$1-gk-fd]} fds"
}

# --- traffic loops: each writes one verdict per line ("ok" or "WRONG <what> <code>") -----
traffic() {  # name expected curl_to-args...
  local name=$1 want=$2 code
  shift 2
  while [[ ! -e $OG_TMP/stop ]]; do
    code=$(curl_to "$@")
    if [[ $code == "$want" ]]; then echo ok; else echo "WRONG $name $code"; fi
  done >"$OG_TMP/verdicts-$name"
}
sample start
T0=$SECONDS
traffic good 200 "$EDGE" --cert "$P/edge.pem" --key "$P/edge.key" "https://h.test:$GK_TLS_PORT/" &
L1=$!
traffic attacker 000 "$ATTACKER" --cert "$P/edge.pem" --key "$P/edge.key" "https://a.test:$GK_TLS_PORT/" &
L2=$!
traffic no_cert 000 "$EDGE" "https://h.test:$GK_TLS_PORT/" &
L3=$!
traffic wrong_cert 000 "$EDGE" --cert "$P/other.pem" --key "$P/other.key" "https://h.test:$GK_TLS_PORT/" &
L4=$!
OG_PIDS+=("$L1" "$L2" "$L3" "$L4")

# --- churn: new ranges every 3 s (the agent refreshes every 3 s), a gatekeeper reload every 5 s
reloads=0
mid_done=0
applied() { grep -c "event=xdp.apply " "$OG_TMP/agent.log" || true; }
applied0=$(applied)
while ((SECONDS - T0 < SOAK_S)); do
  serve_next
  if ((gen % 2 == 0)); then kill -HUP "$GK_PID" && reloads=$((reloads + 1)); fi
  if ((!mid_done && SECONDS - T0 >= SOAK_S / 2)); then sample middle; mid_done=1; fi
  sleep 2.5
done
touch "$OG_TMP/stop"
wait "$L1" "$L2" "$L3" "$L4" 2>/dev/null || true
sleep 1
sample end
updated=$(($(applied) - applied0))

for f in good attacker no_cert wrong_cert; do
  n=$(wc -l <"$OG_TMP/verdicts-$f")
  wrong=$(grep -c WRONG "$OG_TMP/verdicts-$f" || true)
  og_log "$f: $n requests, $wrong wrong$( ((wrong)) && echo ": $(grep WRONG "$OG_TMP/verdicts-$f" | sort | uniq -c | head -3 | tr '\n' ';')" || true)"
  og_check "$f: zero wrong verdicts in $n requests" [ "$wrong" = 0 -a "$n" -gt 0 ]
done
og_check "the ranges churned ($gen sets served, $updated XDP applies)" [ "$updated" -ge $((SOAK_S / 6)) ]
gk_reloaded=$(grep -c "event=gk_reloaded" "$OG_TMP/gk.log" || true)
og_check "the gatekeeper reloaded ($gk_reloaded reloads logged for $reloads SIGHUPs)" \
  [ "$gk_reloaded" -ge "$reloads" -a "$reloads" -ge 2 ]
og_check "agent healthy at the end" [ "$(st .health)" = healthy ]
for d in agent gk; do
  drss=$((S[end-$d-rss] - S[start-$d-rss]))
  dfd=$((S[end-$d-fd] - S[start-$d-fd]))
  og_check "$d: RSS grew $drss KiB (bound $RSS_BOUND_KB), fds grew $dfd (bound $FD_BOUND)" \
    [ "$drss" -le "$RSS_BOUND_KB" -a "$dfd" -le "$FD_BOUND" ]
done
og_finish
