#!/usr/bin/env bash
# An explicit default_host serves no-SNI/unknown-SNI handshakes (still Host-checked); IPv6
# listener; max_connections; upstream down → 502; PROXY v1; a request on an upstream
# connection the upstream closed while idle is sent again on a new one.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
P=$T/pki
gk_upstream http
HTTP_UP=$UP_PORT
gk_upstream pp2echo
PP_UP=$UP_PORT
gk_upstream http-short-keepalive
SHORT_UP=$UP_PORT
DEAD_PORT=$(gk_free_port)
GK_PORT=$(gk_free_port)
cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT", "[::1]:$GK_PORT"]
workers = 1
default_host = "a.test"
max_connections = 3
edge_ranges_file = "$T/none.json"
[[host]]
names = ["a.test"]
cert = "$P/srv-a.pem"
key = "$P/srv-a.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$HTTP_UP"
[[host]]
names = ["o.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$DEAD_PORT"
[[host]]
names = ["t.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
mode = "tcp"
proxy_protocol = "v1"
upstream = "127.0.0.1:$PP_UP"
[[host]]
names = ["k.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$SHORT_UP"
TOML
gk_start
EDGE=(--cert "$P/edge.pem" --key "$P/edge.key")
code=$(curl -sS -o "$T/body" -w '%{http_code}' --max-time 5 -k "${EDGE[@]}" -H 'Host: a.test' "https://127.0.0.1:$GK_PORT/" 2>"$T/curl.err" || true)
expect_eq "no SNI with default_host = a.test: 200" 200 "$code"
expect_eq "unknown SNI served by default host: 200" 200 "$(gk_curl x.test / -k "${EDGE[@]}" -H "Host: a.test")"
expect_eq "unknown SNI on default host with Host x.test: 421" 421 "$(gk_curl x.test / -k "${EDGE[@]}")"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$P/srvca/ca.pem" "${EDGE[@]}" \
  --resolve "a.test:$GK_PORT:::1" "https://a.test:$GK_PORT/" 2>"$T/curl.err" || true)
expect_eq "IPv6 listener [::1]: 200" 200 "$code"
expect_eq "upstream down: 502" 502 "$(gk_curl o.test / "${EDGE[@]}")"
line=$( (printf 'x\n'; sleep 1) | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$GK_PORT" -servername t.test \
  -cert "$P/edge.pem" -key "$P/edge.key" 2>/dev/null | head -1 || true)
expect_match "PROXY v1 sent before the bytes (consumer sees no v2 signature)" 'no PROXY v2 signature.*"got": "50524f5859205443503420' "$line"
# The upstream closes idle keep-alive connections after 0.5 s; the second request on the same
# client connection (1.5 s later) finds its upstream connection closed and is retried.
gk_bg "$T/ka.log" python3 "$GK_HERE/keepalive_clients.py" "$GK_PORT" k.test 1 "$P/edge.pem" "$P/edge.key" \
  "$P/srvca/ca.pem" "$T/trigger"
KA_PID=$LAST_PID
for _ in $(seq 1 100); do grep -q phase1 "$T/ka.log" 2>/dev/null && break; sleep 0.1; done
sleep 1.5
touch "$T/trigger"
wait "$KA_PID" || true
expect_eq "request after the upstream closed its idle connection: retried, 200" "phase1 ok=1 phase2 ok=1" \
  "$(tr '\n' ' ' <"$T/ka.log" | sed 's/ $//')"
# Hold three connections open, the fourth is closed at accept.
for i in 1 2 3; do
  gk_bg "$T/hold$i.log" bash -c "sleep 4 | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:$GK_PORT -servername a.test -cert $P/edge.pem -key $P/edge.key"
done
sleep 1.5
code=$(gk_curl a.test / "${EDGE[@]}")
expect_match "max_connections = 3: the fourth connection is closed" "000 " "$code $(tr -d '\n' <"$T/curl.err")"
sleep 3
expect_eq "after the holders leave: 200 again" 200 "$(gk_curl a.test / "${EDGE[@]}")"
gk_finish
