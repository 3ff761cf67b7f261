#!/usr/bin/env bash
# e2e (issue 12): managed Authenticated Origin Pull certificates with real daemons, in a
# network namespace of the test's own:
#
#   client loop --http--> nginx "edge" --mTLS, proxy_ssl_certificate--> gatekeeper --> upstream
#                               ^ the certificate the fake API deployed      ^ client_ca = "aop:<zone>"
#   agent ([[aop.zone]]) --HTTPS--> tests/tools/fake_cf_api.py (its own CA, 1 s deployment)
#
# The fake plays the edge's side too: the newest "active" zone certificate (before the first,
# a "global" origin-pull certificate) is what nginx presents; the fake copies it and sends
# nginx SIGHUP when it changes (--edge-hook). nginx makes a full handshake per request
# (no upstream keep-alive, no session reuse), so every request proves that the certificate
# the edge presents right then is trusted by the gatekeeper.
#
# 1. agentctl aop issue; then, with the client loop running, agentctl aop rotate: zero failed
#    requests, the fake saw exactly the uploads, activations and deletes a rotation makes, and
#    the loop got through with each certificate.
# 2. kill -9 of the agent in each step of a rotation (uploading, deploying, activating,
#    retiring: the fake holds that step's answer, stalled.log says it is held, agentctl aop
#    status names the phase, then kill -9), restart: the rotation completes, one upload only,
#    still zero failed requests.
# 3. The deleted certificates enter the zone's CRL ca_overlap after their deletion and are
#    then refused by the gatekeeper, though unexpired; an expired certificate of the zone's CA
#    is refused.
# 4. agentctl aop rotate --ca under the client loop: the bundle holds both CAs, the
#    certificate moves to the new CA, the bundle holds the new CA alone: zero failed requests.
# 5. Every certificate of the old CA is then refused by the gatekeeper.
source "$(dirname "$0")/lib.sh"
og_setup aop
[[ -x $AGENT && -x $CTL ]] || { og_log "SKIP: originguard-agent/agentctl not built"; exit 77; }
GK_BIN=$OG_BUILD/gatekeeper/originguard-gatekeeper
[[ -x $GK_BIN ]] || { og_log "SKIP: originguard-gatekeeper not built"; exit 77; }
command -v nginx >/dev/null || { og_log "SKIP: nginx not installed (scripts/install-deps.sh)"; exit 77; }
T0=$SECONDS
NS=$(og_netns aop)
in_ns() { ip netns exec "$NS" "$@"; }
ZONE=0123456789abcdef0123456789abcdef
TOKEN=e2e-token-$RANDOM$RANDOM
D=$OG_TMP
API=$D/api EDGE=$D/edge NG=$D/nginx EXPORT=$D/export CADIR=$D/ca
mkdir -p "$API" "$EDGE" "$NG" "$EXPORT"
free_port() { in_ns "$OG_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { og_wait_for "${2:-30}" in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1"; }

# --- the origin's server certificate and the "global" origin-pull certificate -----------
og_test_pki "$D/pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=fake global origin-pull CA" \
  -keyout "$D/pki/global-ca.key" -out "$D/pki/global-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=origin-pull.cloudflare.net" \
  -keyout "$D/pki/global.key" -out "$D/pki/global.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$D/pki/client.ext"
openssl x509 -req -in "$D/pki/global.csr" -CA "$D/pki/global-ca.pem" -CAkey "$D/pki/global-ca.key" -CAcreateserial \
  -days 2 -extfile "$D/pki/client.ext" -out "$D/pki/global.pem" 2>/dev/null

# --- the fake API, which also decides what the edge presents ------------------------------
og_bg ip netns exec "$NS" "$OG_PYTHON" "$OG_ROOT/tests/tools/fake_cf_api.py" --dir "$API" --zone "$ZONE" --token "$TOKEN" \
  --deploy-delay 1.5 --delete-delay 1 --max-seconds 400 \
  --edge-dir "$EDGE" --edge-default "$D/pki/global.pem,$D/pki/global.key" \
  --edge-hook "[ -s $NG/nginx.pid ] && kill -HUP \$(cat $NG/nginx.pid)"
og_wait_for 30 test -s "$API/port" || { og_fail "fake API did not start"; exit 1; }
og_wait_for 10 test -s "$EDGE/edge.log" || { og_fail "fake edge did not write its certificate"; exit 1; }
API_PORT=$(cat "$API/port")
install -m 0600 /dev/null "$D/token"
echo "$TOKEN" >"$D/token"

# --- the agent -------------------------------------------------------------------------------
SOCK=$D/agent.sock
LOG=$D/agent.log
: >"$LOG"
echo '{"ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8:cf::/48"],"etag":"e1"}' >"$D/ranges.json"
cat >"$D/agent.toml" <<TOML
[ranges]
sources = ["file://$D/ranges.json"]
state_dir = "$D/state"
export_file = ""
max_shrink = 1.0

$(og_toml_no_kernel "$SOCK")

[aop]
export_dir = "$EXPORT"
poll_interval = "1s"
# The test's stand-in for Cloudflare's global origin-pull CA (tests cannot have Cloudflare's key).
origin_pull_ca = "$D/pki/global-ca.pem"

[[aop.zone]]
zone_id = "$ZONE"
api_token_file = "$D/token"
ca_dir = "$CADIR"
api_base = "https://127.0.0.1:$API_PORT/client/v4"
api_ca_file = "$API/ca.pem"
cert_lifetime = "2h"
renew_before = "1h"
ca_overlap = "3s"
TOML
ctl() { in_ns "$CTL" -s "$SOCK" "$@"; }
aop() { ctl aop status --json 2>/dev/null | jq -r ".zones[0] | $1"; }  # status exits 1 when failing
AGENT_PID=
start_agent() {
  ip netns exec "$NS" "$AGENT" --config "$D/agent.toml" --foreground 2>>"$LOG" &
  AGENT_PID=$!
  OG_PIDS+=("$AGENT_PID")
  og_wait_for 60 ctl version || { og_fail "agent did not answer: $(tail -n 5 "$LOG" | tr '\n' '|')"; return 1; }
}
start_agent
og_check "the zone's CA bundle is exported before anything is issued" og_wait_for 30 test -s "$EXPORT/$ZONE.pem"
state_is() { [[ $(aop .state) == "$1" ]]; }
state_is_ca() { [[ $(aop .ca_rollover) == "$1" ]]; }
og_check "zone is unissued" og_wait_for 10 state_is unissued

# --- upstream, gatekeeper (client_ca = "aop:<zone>"), nginx as the edge ---------------------
UP_PORT=$(free_port)
og_bg ip netns exec "$NS" "$OG_PYTHON" "$OG_ROOT/tests/e2e/gatekeeper/upstream.py" http "$UP_PORT"
GK_PORT=$(free_port)
cat >"$D/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT"]
workers = 1
control_socket = "$D/gk.sock"
aop_dir = "$EXPORT"
origin_pull_ca = "$D/pki/global-ca.pem"

[[host]]
names = ["localhost"]
cert = "$D/pki/server.pem"
key = "$D/pki/server.key"
client_ca = "aop:$ZONE"
upstream = "127.0.0.1:$UP_PORT"
TOML
in_ns "$GK_BIN" --check-config --config "$D/gk.toml" >"$D/gk-check.log" 2>&1 ||
  { og_fail "gatekeeper config refused: $(cat "$D/gk-check.log")"; exit 1; }
og_bg ip netns exec "$NS" "$GK_BIN" --config "$D/gk.toml" 2>"$D/gk.log"
EDGE_PORT=$(free_port)
cat >"$NG/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $NG/body; proxy_temp_path $NG/proxy;
  fastcgi_temp_path $NG/fcgi; uwsgi_temp_path $NG/uwsgi; scgi_temp_path $NG/scgi;
  server {
    listen 127.0.0.1:$EDGE_PORT;
    location / {
      proxy_pass https://127.0.0.1:$GK_PORT;
      proxy_set_header Host localhost;
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_certificate $EDGE/edge.pem;
      proxy_ssl_certificate_key $EDGE/edge.key;
      proxy_ssl_trusted_certificate $D/pki/ca.pem;
      proxy_ssl_verify on;
      # A full handshake, with the certificate presented, on every request.
      proxy_ssl_session_reuse off;
    }
  }
}
CONF
og_bg ip netns exec "$NS" nginx -c "$NG/nginx.conf" -p "$NG"
wait_port "$GK_PORT" || { og_fail "gatekeeper not listening: $(tail -n 5 "$D/gk.log")"; exit 1; }
wait_port "$EDGE_PORT" || { og_fail "nginx not listening: $(cat "$NG/error.log")"; exit 1; }
edge_code() { in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$EDGE_PORT/probe" || true; }
edge_ok() { [[ $(edge_code) == 200 ]]; }
# What the gatekeeper does with a client certificate presented directly: the HTTP code, or
# 000 when the handshake (or the request right after it) is refused.
gk_code() {  # cert key
  in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$D/pki/ca.pem" --cert "$1" --key "$2" \
    --resolve "localhost:$GK_PORT:127.0.0.1" "https://localhost:$GK_PORT/direct" 2>/dev/null || true
}
# The migration: until the zone's first certificate is active (plus ca_overlap), the agent's
# bundle also trusts the global origin-pull CA, so the edge's global certificate gets through.
ncerts() { grep -c 'BEGIN CERTIFICATE' "$EXPORT/$ZONE.pem" || true; }
og_check "before the first issue the bundle holds the zone's CA and the global CA" [ "$(ncerts)" = 2 ]
og_check "before the first issue the edge presents the global certificate: the gatekeeper accepts it" \
  og_wait_for 10 edge_ok

# --- the client loop runs from here to the end: through the switch from the global certificate,
# the rotations and the CA rollover ------------------------------------------------------------
STOP=$D/loop.stop
og_bg ip netns exec "$NS" "$OG_PYTHON" "$OG_ROOT/tests/e2e/aop_client_loop.py" "$EDGE_PORT" localhost "$D/loop.json" "$STOP" 20000 240 0.02
LOOP_PID=${OG_PIDS[-1]}
og_wait_for 20 bash -c "[[ \$(jq -r .ok '$D/loop.json' 2>/dev/null) -ge 50 ]]" || og_fail "client loop did not get going: $(cat "$D/loop.json" 2>/dev/null)"
loop_ok() { jq -r .ok "$D/loop.json" 2>/dev/null || echo 0; }
# More successful requests after this point (the edge's new certificate was used).
more_ok() { local n; n=$(loop_ok); og_wait_for 20 bash -c "[[ \$(jq -r .ok '$D/loop.json') -ge $((n + $1)) ]]"; }

# --- 1a. first issue (the migration: one config section above, and this one command) -------------------------------------------------------------------------
count() { grep -c -E "$1" "$API/requests.log" || true; }
# The certificates the API lists (state.json is written only at requests: it can be stale).
live_ids() {
  in_ns curl -s --max-time 10 --cacert "$API/ca.pem" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$API_PORT/client/v4/zones/$ZONE/origin_tls_client_auth" | jq -c '[.result[].id]'
}
only_live() { [[ $(live_ids) == "[\"$1\"]" ]]; }
ctl aop issue >"$D/out" 2>&1 || og_fail "agentctl aop issue: $(cat "$D/out")"
issued() { [[ $(aop '"\(.state) \(.current_cert_id)"') =~ ^idle\ [0-9a-f]{32}$ ]]; }
og_wait_for 30 issued || og_fail "first issue did not complete: $(ctl aop status --json | jq -c .zones[0])"
C1=$(aop .current_cert_id)
og_check "the edge presents the issued certificate ($C1)" og_wait_for 10 grep -qx "$C1" "$EDGE/edge.log"
og_check "edge -> gatekeeper -> upstream works with it" og_wait_for 10 edge_ok
og_check "first issue: 1 upload, 1 activation, no delete" [ "$(count '^POST .*/origin_tls_client_auth ')/$(count '^PUT .*/settings ')/$(count '^DELETE ')" = 1/1/0 ]
no_global() { [[ $(aop .trusts_global_ca) == false && $(ncerts) == 1 ]]; }
og_check "ca_overlap after the activation the bundle drops the global CA" og_wait_for 20 no_global
gk_refuses() { [[ $(gk_code "$1" "$2") == 000 ]]; }
og_check "after the migration the global certificate is refused by the gatekeeper" \
  og_wait_for 10 gk_refuses "$D/pki/global.pem" "$D/pki/global.key"

# --- 1b. a full rotation under traffic ---------------------------------------------------------
ctl aop rotate >"$D/out" 2>&1 || og_fail "agentctl aop rotate: $(cat "$D/out")"
rotated_from() { [[ $(aop '"\(.state) \(.previous_cert_id)"') == "idle $1" && $(aop .current_cert_id) != "$1" ]]; }
og_wait_for 40 rotated_from "$C1" || og_fail "rotation did not complete: $(ctl aop status --json | jq -c .zones[0])"
C2=$(aop .current_cert_id)
og_check "the edge presents the rotated certificate ($C2)" og_wait_for 10 grep -qx "$C2" "$EDGE/edge.log"
more_ok 50 || og_fail "the loop stalled after the rotation"
og_check "rotation: 2 uploads, 2 activations, 1 delete (of $C1) in all" \
  [ "$(count '^POST .*/origin_tls_client_auth ')/$(count '^PUT .*/settings ')/$(count '^DELETE ')/$(count "^DELETE .*/$C1 ")" = 2/2/1/1 ]
og_check "the agent removed its copy of the rotated-in client key" [ ! -e "$CADIR/client-next.key" ]

# --- 2. kill -9 in each step of a rotation, then resume ---------------------------------------
# hold STEP_RE PHASE: the fake holds the answer to the next request matching STEP_RE; once it
# is held and the agent's status shows PHASE, kill -9 and restart the agent.
kill_in() {
  local re=$1 phase=$2 held
  touch "$API/stalled.log"
  held=$(wc -l <"$API/stalled.log")
  printf '{"stall": 1, "stall_match": "%s", "stall_seconds": 20}\n' "$re" >"$API/control.json"
  if ! og_wait_for 30 bash -c "[[ \$(wc -l <'$API/stalled.log') -gt $held ]]"; then
    og_fail "kill in $phase: no request matching $re came"; return 1
  fi
  local seen
  seen=$(aop .state)
  [[ $seen == "$phase" ]] || og_fail "kill in $phase: the agent's status says $seen while $re is held"
  kill -9 "$AGENT_PID"
  wait "$AGENT_PID" 2>/dev/null || true
  og_log "killed the agent in $phase ($(tail -n 1 "$API/stalled.log"))"
  start_agent
}
UPLOADS_BEFORE=$(count '^POST .*/origin_tls_client_auth ')
ctl aop rotate >"$D/out" 2>&1 || og_fail "agentctl aop rotate (kill round): $(cat "$D/out")"
kill_in '^POST .*/origin_tls_client_auth$' uploading
kill_in '^GET .*/origin_tls_client_auth/[0-9a-f]{32}$' deploying
kill_in '^PUT .*/settings$' activating
kill_in "^DELETE .*/$C2\$" retiring
og_wait_for 40 rotated_from "$C2" || og_fail "rotation after the kills did not complete: $(ctl aop status --json | jq -c .zones[0])"
C3=$(aop .current_cert_id)
og_check "after 4 kills: exactly one more upload (no duplicate)" [ "$(($(count '^POST .*/origin_tls_client_auth ') - UPLOADS_BEFORE))" = 1 ]
og_check "after 4 kills: the upload answered to no one was adopted (the agent listed)" [ "$(count '^GET .*/origin_tls_client_auth ')" -ge 1 ]
og_check "the edge presents the certificate after the kills ($C3)" og_wait_for 10 grep -qx "$C3" "$EDGE/edge.log"
og_check "$C2 deleted at the API, only $C3 left" og_wait_for 10 only_live "$C3"
more_ok 50 || og_fail "the loop stalled after the kill round"

# --- 3. the old certificates at the gatekeeper, before a CA rollover ------------------------
# The agent lists a certificate it deleted at the API in the zone's CRL ca_overlap (3 s here)
# after the deletion, in the exported bundle the gatekeeper reloads: a deleted but unexpired
# certificate of the same CA is refused from then on.
in_crl() { [[ $(aop .revoked_in_crl) -ge "$1" ]]; }
og_check "$C1 and $C2 are in the zone's CRL (agentctl aop status)" og_wait_for 20 in_crl 2
og_check "after the agent's restarts the bundle still lacks the global CA" no_global
for c in "$C1" "$C2"; do
  og_check "certificate $c, deleted at the API but unexpired, same CA: refused by the gatekeeper" \
    og_wait_for 10 gk_refuses "$API/uploads/$c.pem" "$API/uploads/$c.key"
done
code=$(gk_code "$API/uploads/$C3.pem" "$API/uploads/$C3.key")
og_check "certificate $C3 (working) accepted by the gatekeeper directly (got $code)" [ "$code" = 200 ]
code=$(gk_code "$D/pki/global.pem" "$D/pki/global.key")
og_check "the global certificate is refused by the gatekeeper (got $code)" [ "$code" = 000 ]
# An expired certificate of the zone's CA (issued with dates in the past from the CA's key,
# so no waiting), and its control: the same issuance with current dates is accepted.
OCA=$D/oca
mkdir -p "$OCA"
: >"$OCA/index.txt"
echo 01 >"$OCA/serial"
cat >"$OCA/ca.cnf" <<CNF
[ca]
default_ca = zone
[zone]
database = $OCA/index.txt
serial = $OCA/serial
new_certs_dir = $OCA
default_md = sha256
policy = any
x509_extensions = ext
unique_subject = no
[any]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF
zone_cert() {  # name, then openssl ca's date options
  local n=$1
  shift
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n" -keyout "$OCA/$n.key" \
    -out "$OCA/$n.csr" 2>/dev/null &&
    openssl ca -batch -notext -config "$OCA/ca.cnf" -cert "$CADIR/ca.pem" -keyfile "$CADIR/ca.key" \
      -in "$OCA/$n.csr" -out "$OCA/$n.pem" "$@" 2>>"$OCA/ca.log"
}
zone_cert expired -startdate 20200101000000Z -enddate 20200201000000Z || og_fail "openssl ca: $(cat "$OCA/ca.log")"
zone_cert current -days 1 || og_fail "openssl ca: $(cat "$OCA/ca.log")"
code=$(gk_code "$OCA/current.pem" "$OCA/current.key")
og_check "a current certificate of the zone's CA, not retired: accepted by the gatekeeper (got $code)" [ "$code" = 200 ]
code=$(gk_code "$OCA/expired.pem" "$OCA/expired.key")
og_check "an EXPIRED certificate of the zone's CA: refused by the gatekeeper (got $code)" [ "$code" = 000 ]

# --- 4. CA rollover under traffic: agentctl aop rotate --ca ----------------------------------
bundle_has() { [[ $(ncerts) == "$1" ]]; }
OLD_BUNDLE=$(cat "$EXPORT/$ZONE.pem")
UPLOADS_BEFORE=$(count '^POST .*/origin_tls_client_auth ')
ctl aop rotate --ca >"$D/out" 2>&1 || og_fail "agentctl aop rotate --ca: $(cat "$D/out")"
og_check "CA rollover: the exported bundle holds the old and the new CA" og_wait_for 20 bundle_has 2
og_check "CA rollover: status says trusting" og_wait_for 10 state_is_ca trusting
rolled_over() { [[ $(aop '"\(.state) \(.ca_rollover) \(.previous_cert_id)"') == "idle none $C3" ]]; }
og_wait_for 60 rolled_over || og_fail "CA rollover did not complete: $(ctl aop status --json | jq -c .zones[0])"
C4=$(aop .current_cert_id)
og_check "after the rollover the bundle holds one CA, the new one" [ "$(ncerts)" = 1 -a "$(cat "$EXPORT/$ZONE.pem")" != "$OLD_BUNDLE" ]
og_check "the new certificate ($C4) is signed by the new CA" \
  openssl verify -partial_chain -purpose sslclient -CAfile "$EXPORT/$ZONE.pem" "$API/uploads/$C4.pem"
og_check "the edge presents the certificate from the new CA ($C4)" og_wait_for 10 grep -qx "$C4" "$EDGE/edge.log"
more_ok 50 || og_fail "the loop stalled after the CA rollover"
og_check "CA rollover: one more upload" [ "$(($(count '^POST .*/origin_tls_client_auth ') - UPLOADS_BEFORE))" = 1 ]
og_check "$C3 deleted at the API, only $C4 left" og_wait_for 10 only_live "$C4"

# --- the loop's verdict -----------------------------------------------------------------------
touch "$STOP"
og_wait_for 20 bash -c "! kill -0 $LOOP_PID 2>/dev/null"
read -r SENT OK FAILED <<<"$(jq -r '"\(.sent) \(.ok) \(.failed)"' "$D/loop.json")"
og_log "client loop: $SENT requests through edge -> gatekeeper -> upstream, $OK ok, $FAILED failed"
jq -r '.failures[]' "$D/loop.json" | sed 's/^/  failed: /' >&2
og_check "zero failed requests through the switch from the global certificate, the rotations and the CA rollover ($FAILED of $SENT)" [ "$FAILED" = 0 -a "$OK" -gt 0 ]
fp() { openssl x509 -in "$API/uploads/$1.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f; }
for c in "$C1" "$C2" "$C3" "$C4"; do
  og_check "requests got through with certificate $c" [ "$(jq -r --arg f "$(fp "$c")" '.certs[$f] // 0' "$D/loop.json")" -gt 0 ]
done
GFP=$(openssl x509 -in "$D/pki/global.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
og_check "requests got through with the global certificate before the switch" \
  [ "$(jq -r --arg f "$GFP" '.certs[$f] // 0' "$D/loop.json")" -gt 0 ]

# --- 5. after the rollover, every certificate of the old CA is refused ----------------------
for c in "$C1" "$C3"; do
  code=$(gk_code "$API/uploads/$c.pem" "$API/uploads/$c.key")
  og_check "certificate $c (old CA) refused by the gatekeeper after the CA rollover (got $code)" [ "$code" = 000 ]
done
code=$(gk_code "$API/uploads/$C4.pem" "$API/uploads/$C4.key")
og_check "certificate $C4 (new CA) accepted by the gatekeeper directly (got $code)" [ "$code" = 200 ]

kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_log "wall time $((SECONDS - T0)) s"
og_finish
