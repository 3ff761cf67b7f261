#!/usr/bin/env bash
# An explicit default_host serves no-SNI/unknown-SNI handshakes (still Host-checked); IPv6
# listener; max_connections; upstream down → 502; PROXY v1; an upstream connection the
# upstream closed while idle is not reused.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
gk_upstream http
HTTP_UP=$UP_PORT
gk_upstream pp2echo
PP_UP=$UP_PORT
gk_upstream http-short-keepalive
SHORT_UP=$UP_PORT
gk_upstream rawbody "$T/raw.bin"
RAW_UP=$UP_PORT
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
[[host]]
names = ["w.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$RAW_UP"
TOML
gk_start
HOLDERS=()
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
# client connection is sent once the gatekeeper's upstream connection has received that FIN:
# "yes" when none of its connections to the upstream is established any more (after the first
# request one was). The FIN leaves it in CLOSE-WAIT until read; the upstream pool's idle watch
# reads it at once and closes the socket, so CLOSE-WAIT may already be gone.
upstream_closed_idle() {
  local open waiting
  open=$(ss -Htn state established "( dport = :$SHORT_UP )" | grep -c . || true)
  waiting=$(ss -Htn state close-wait "( dport = :$SHORT_UP )" | grep -c . || true)
  if ((open == 0)); then echo yes; else echo "no(established=$open,close-wait=$waiting)"; fi
}
after_upstream_idle() {  # method: prints "phase1 ok=1 phase2 ok=K status=NNN upstream_closed=yes"
  rm -f "$T/trigger"
  gk_bg "$T/ka-$1.log" python3 "$GK_HERE/keepalive_clients.py" "$GK_PORT" k.test 1 "$P/edge.pem" "$P/edge.key" \
    "$P/srvca/ca.pem" "$T/trigger" "$1"
  local pid=$LAST_PID closed
  for _ in $(seq 1 100); do grep -q phase1 "$T/ka-$1.log" 2>/dev/null && break; sleep 0.1; done
  for _ in $(seq 1 100); do closed=$(upstream_closed_idle); [[ $closed == yes ]] && break; sleep 0.05; done
  touch "$T/trigger"
  wait "$pid" || true
  echo "$(tr '\n' ' ' <"$T/ka-$1.log")upstream_closed=$closed"
}
# The EOF is seen before the request is sent (an idle upstream connection is checked before
# reuse), so neither request goes to the closed connection; the race in which the upstream
# closes after that check is what the resend of bodyless idempotent requests covers.
expect_eq "GET after the upstream closed its idle connection: sent on a new one, 200" \
  "phase1 ok=1 phase2 ok=1 status=200 upstream_closed=yes" "$(after_upstream_idle GET)"
expect_eq "POST after the upstream closed its idle connection: sent once, on a new one, 200" \
  "phase1 ok=1 phase2 ok=1 status=200 upstream_closed=yes" "$(after_upstream_idle POST)"

# Smuggling defences: the framing the upstream sees is the one the gatekeeper checked.
raw() {  # sends $1 (printf format) to w.test over TLS, prints the status line
  printf "$1" | timeout 10 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$GK_PORT" -servername w.test \
    -cert "$P/edge.pem" -key "$P/edge.key" 2>/dev/null | head -1 | tr -d '\r' || true
}
expect_eq "two Host fields: 400" "HTTP/1.1 400 Bad Request" "$(raw 'GET / HTTP/1.1\r\nHost: w.test\r\nHost: a.test\r\n\r\n')"
expect_eq "Transfer-Encoding with Content-Length: 400" "HTTP/1.1 400 Bad Request" \
  "$(raw 'POST / HTTP/1.1\r\nHost: w.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')"
expect_eq "chunked on HTTP/1.0: 400" "HTTP/1.1 400 Bad Request" \
  "$(raw 'POST / HTTP/1.0\r\nHost: w.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')"
expect_eq "Transfer-Encoding gzip: 501" "HTTP/1.1 501 Not Implemented" \
  "$(raw 'POST / HTTP/1.1\r\nHost: w.test\r\nTransfer-Encoding: gzip\r\n\r\n')"
rm -f "$T/raw.bin"
expect_eq "chunked request with trailers: 200" "HTTP/1.1 200 OK" \
  "$(raw 'POST / HTTP/1.1\r\nHost: w.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Client-Verify: SUCCESS\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n')"
body=$(sed -n '/^\r$/,$p' "$T/raw.bin" 2>/dev/null | tr -d '\r' | tr '\n' '|' || true)
expect_eq "trailers dropped: the upstream gets the chunks and a bare last chunk" "|5|hello|0||" "$body"

# Hold three connections open, the fourth is closed at accept.
gk_json() {  # jq filter over the gatekeeper's status (its control socket)
  local j
  j=$("$AGENTCTL" --gatekeeper-socket "$T/gk.sock" gatekeeper status --json 2>/dev/null || true)
  jq -e "$1" <<<"$j"
}
gk_poll() {  # seconds jq-filter: waits until the gatekeeper's status satisfies it
  local deadline=$((SECONDS + $1))
  until gk_json "$2" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
overload0=$(gk_json .refused_overload || echo -1)
for i in 1 2 3; do
  gk_bg "$T/hold$i.log" bash -c "sleep 30 | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:$GK_PORT -servername a.test -cert $P/edge.pem -key $P/edge.key"
  HOLDERS+=("$LAST_PID")
done
gk_poll 10 '.connections_active == 3' && pass "three holders connected" || failcase "three holders connected: $(gk_json .connections_active)"
code=$(gk_curl a.test / "${EDGE[@]}")
expect_match "max_connections = 3: the fourth connection is closed" "000 " "$code $(tr -d '\n' <"$T/curl.err")"
expect_eq "... counted as refused_overload by a gatekeeper that is still running" "$((overload0 + 1))" \
  "$(kill -0 "$GK_PID" && gk_json .refused_overload)"
for pid in "${HOLDERS[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
gk_poll 10 '.connections_active == 0' && pass "holders gone" || failcase "holders gone: $(gk_json .connections_active)"
expect_eq "after the holders leave: 200 again" 200 "$(gk_curl a.test / "${EDGE[@]}")"
gk_finish
