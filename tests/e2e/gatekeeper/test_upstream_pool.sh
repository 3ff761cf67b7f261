#!/usr/bin/env bash
# The per-worker upstream keep-alive pool (issue 13, deliver 5): idle client connections hold
# no upstream socket; a connection that saw a desync, a close-delimited body, Connection: close
# or a 101 is never lent to the next client; an upstream that closes idle pooled connections
# costs no 502; a reload that changes a host's upstream never reaches the old one again; a
# request smuggled in a body, pipelined requests, a 103 before the answer and two hosts sharing
# an upstream never hand one client's exchange to another.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
gk_stub
STUB=$UP_PORT
STUB_A=$STUB_LOG
gk_stub
STUB2=$UP_PORT
STUB_B=$STUB_LOG
gk_upstream http-short-keepalive
SHORT=$UP_PORT
GK_PORT=$(gk_free_port)
MPORT=$(gk_free_port)
POOL=${GK_POOL_KEEPALIVE:-4}  # 0: the behaviour before the pool (the test then fails)
write_config() {  # upstream of r.test
  cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT"]
metrics_listen = "127.0.0.1:$MPORT"
workers = 1
edge_ranges_file = "$T/none.json"
idle_timeout = "30s"
upstream_keepalive = $POOL

[[host]]
names = ["n.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
upstream = "127.0.0.1:$STUB"

# Same upstream as n.test: the two hosts share its pooled connections.
[[host]]
names = ["t.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
upstream = "127.0.0.1:$STUB"

[[host]]
names = ["k.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
upstream = "127.0.0.1:$SHORT"

[[host]]
names = ["p.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
upstream = "127.0.0.1:$1"
TOML
}
write_config "$STUB2"
gk_start
metric() {  # name [labels]: the sample's value (0 when absent)
  local v n=$1
  [[ -n ${2:-} ]] && n+="{$2}"
  v=$(curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" | awk -v n="$n" '$1 == n {print $2}')
  echo "${v:-0}"
}
discards() { metric og_gk_upstream_discards_total "reason=\"$1\""; }
req() { printf 'GET %s HTTP/1.1\\r\\nHost: %s\\r\\n%s\\r\\n' "$1" "$2" "${3:-}"; }
lines() { tr '\n' ' ' <<<"$1"; }
upstream_conns() { jq -s '[.[] | select(.target != null) | .conn] | unique | length' "${1:-$STUB_A}"; }
fds() { find "/proc/$GK_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# --- (a) N sequential keep-alive client connections, one request each, then idle
N=${GK_POOL_N:-200}
base_fds=$(fds)
gk_bg "$T/ka.log" python3 "$GK_HERE/keepalive_clients.py" "$GK_PORT" n.test "$N" "$P/edge.pem" "$P/edge.key" \
  "$P/srvca/ca.pem" "$T/phase2"
KA_PID=$LAST_PID
for _ in $(seq 1 600); do grep -q phase1 "$T/ka.log" 2>/dev/null && break; sleep 0.1; done
expect_eq "$N keep-alive clients, one request each" "phase1 ok=$N" "$(grep phase1 "$T/ka.log" || true)"
idle_fds=$(fds)
echo "# fds: $base_fds before, $idle_fds with $N idle client connections"
if ((idle_fds - base_fds <= N + N / 4)); then
  pass "fds with $N idle clients ≈ N + constant ($((idle_fds - base_fds)) more), not 2N"
else
  failcase "fds with $N idle clients: $((idle_fds - base_fds)) more, expected about $N (2N = one upstream per client)"
fi
expect_match "the upstream saw at most upstream_keepalive connections" "^[1-$POOL]\$" "$(upstream_conns)"
expect_match "the pool holds an idle upstream connection" '^[1-9]' "$(metric og_gk_upstream_idle)"
touch "$T/phase2"
wait "$KA_PID" || true
expect_eq "a second request on every idle client connection" "phase2 ok=$N" "$(grep phase2 "$T/ka.log" || true)"
expect_match "... still over at most upstream_keepalive upstream connections" "^[1-$POOL]\$" "$(upstream_conns)"
reuses=$(metric og_gk_upstream_reuses_total)
if ((reuses >= 2 * N - POOL)); then pass "reuses counted ($reuses)"; else failcase "reuses: $reuses < $((2 * N - POOL))"; fi

# --- (b) desync attempts: the connection is discarded, the next client gets its own answer
WS='Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
check_next() {  # case: a new client connection's request must get its own answer, no foreign byte
  local out
  out=$(gk_hc n.test --send "$(req /next n.test)" --read)
  expect_match "$1: the next client gets its own answer" "^status=200 body=b'\\{\"method\": \"GET\", \"target\": \"/next\"" "$out"
  if [[ $out == *POISONED* || $out == *"body until eof"* ]]; then failcase "$1: foreign bytes reached the next client"; fi
}
discarded() {  # case before reasons...: polls until one of the reasons' counters passed `before`
  local what=$1 before=$2 now r _
  shift 2
  for _ in $(seq 1 50); do
    now=0
    for r in "$@"; do now=$((now + $(discards "$r"))); done
    ((now > before)) && break
    sleep 0.1
  done
  if ((now > before)); then pass "$what: counted as a discard ($*)"; else failcase "$what: no discard counted ($*: $now)"; fi
}
sum_discards() { local s=0 r; for r in "$@"; do s=$((s + $(discards "$r"))); done; echo $s; }

b=$(sum_discards extra_bytes upstream_closed)
out=$(gk_hc n.test --send "$(req /extra n.test)" --read)
expect_match "response plus extra bytes: the first client gets its response" "^status=200 body=b'ok'" "$out"
discarded "response plus extra bytes" "$b" extra_bytes upstream_closed
check_next "after extra bytes"

b=$(sum_discards close_delimited)
out=$(gk_hc n.test --send "$(req /eof-body n.test)" --read)
expect_match "close-delimited response relayed" "^status=200 body=b'body until eof'" "$out"
discarded "close-delimited response" "$b" close_delimited
check_next "after a close-delimited response"

b=$(sum_discards connection_close)
out=$(gk_hc n.test --send "$(req /close n.test)" --read)
expect_match "Connection: close response relayed" "^status=200 body=b'ok'" "$out"
discarded "Connection: close response" "$b" connection_close
check_next "after Connection: close"

b=$(sum_discards connection_close)
out=$(gk_hc n.test --send "$(req /a n.test 'Connection: close\r\n')" --read)
expect_match "client's Connection: close relayed" "^status=200 " "$out"
discarded "client's Connection: close (sent upstream)" "$b" connection_close

b=$(sum_discards upgrade)
out=$(gk_hc n.test --send "$(req /ws n.test "$WS")" --read --send 'frame-bytes' --end)
expect_match "WebSocket 101 spliced" "^status=101 " "$out"
discarded "101 (WebSocket)" "$b" upgrade
check_next "after a WebSocket"

b=$(sum_discards upgrade)
out=$(gk_hc n.test --send "$(req /switch n.test)" --read)
expect_match "unasked 101: 502" "^status=502 " "$out"
discarded "unasked 101" "$b" upgrade
check_next "after an unasked 101"

# --- (c) an upstream that closes idle keep-alive connections (0.5 s): no 502 for a GET
b=$(sum_discards upstream_closed)  # before: the upstream may close it before the client has exited
out=$(gk_hc k.test --send "$(req /one k.test)" --read)
expect_match "short keep-alive upstream: first GET" "^status=200 " "$out"
for _ in $(seq 1 50); do (($(sum_discards upstream_closed) > b)) && break; sleep 0.1; done
expect_eq "the upstream's close of an idle pooled connection is seen and counted" 1 "$(($(sum_discards upstream_closed) - b))"
out=$(gk_hc k.test --send "$(req /two k.test)" --read)
expect_match "short keep-alive upstream: the next GET still succeeds" "^status=200 " "$out"
# Racing the upstream's close: requests right at its 0.5 s keep-alive timeout.
bad=0
for d in 0.45 0.5 0.55; do
  out=$(gk_hc k.test --send "$(req /r1 k.test)" --read --sleep "$d" --send "$(req /r2 k.test)" --read)
  [[ $(lines "$out") =~ ^status=200\ .*status=200\  ]] || bad=$((bad + 1))
done
expect_eq "GETs at the upstream's keep-alive timeout: no 502" 0 "$bad"

# --- (d) attacks on a reused connection
# A request smuggled inside a body: the upstream must see it as body bytes, never as a request
# whose answer would wait on the pooled connection for the next client.
SMUG='GET /smuggled HTTP/1.1\r\nHost: n.test\r\n\r\n'
SMUG_LEN=$(printf '%b' "$SMUG" | wc -c)
out=$(gk_hc n.test --send "POST /carrier HTTP/1.1\r\nHost: n.test\r\nContent-Length: $SMUG_LEN\r\n\r\n$SMUG" --read)
expect_match "a request inside a body is relayed as the body" "^status=200 body=b'\\{\"method\": \"POST\", \"target\": \"/carrier\"" "$out"
expect_eq "... of its full length" "$SMUG_LEN" "$(jq -s '[.[] | select(.target == "/carrier")][0].body_raw | length' "$STUB_A")"
check_next "after a request smuggled in a body"
expect_eq "the upstream never saw the smuggled request" 0 "$(gk_count_lines '"/smuggled"' "$STUB_A")"
# Two requests in one write: answered one after the other, in order, each its own.
out=$(gk_hc n.test --send "$(req /p1 n.test)$(req /p2 n.test)" --read --read)
expect_match "pipelined requests answered in order" \
  "^status=200 body=b'\\{\"method\": \"GET\", \"target\": \"/p1\".* status=200 body=b'\\{\"method\": \"GET\", \"target\": \"/p2\"" "$(lines "$out")"
check_next "after pipelined requests"
# 103 Early Hints, the answer 0.2 s later: the connection is not lent before the final response.
out=$(gk_hc n.test --send "$(req /hints n.test)" --read --read)
expect_match "103 then the final response, relayed in order" "^interim=103 status=200 body=b'hinted'" "$(lines "$out")"
check_next "after a 103"
# t.test shares n.test's upstream: it reuses n.test's pooled connections, and every request
# carries its own Host and the gatekeeper's identity headers, never a client's.
n_conns=$(jq -s '[.[] | select(.target != null) | .conn] | unique' "$STUB_A")
out=$(gk_hc t.test --send "$(req /shared t.test 'X-Client-Verify: SUCCESS\r\n')" --read)
expect_match "a host sharing the upstream is answered" '"target": "/shared"' "$out"
shared=$(jq -s -c '[.[] | select(.target == "/shared")][0]' "$STUB_A")
expect_eq "... on a connection n.test's requests used before (one pool per upstream)" true \
  "$(jq -n --argjson seen "$n_conns" --argjson r "$shared" '$seen | any(. == $r.conn)')"
expect_eq "... with its own Host" '["t.test"]' "$(jq -c '[.headers[] | select(.[0] | ascii_downcase == "host") | .[1]]' <<<"$shared")"
expect_eq "... and the gatekeeper's X-Client-Verify (NONE: mtls off), not the client's" '["NONE"]' \
  "$(jq -c '[.headers[] | select(.[0] | ascii_downcase == "x-client-verify") | .[1]]' <<<"$shared")"

# --- (e) a reload that changes p.test's upstream: nothing goes to the old one afterwards
out=$(gk_hc p.test --send "$(req /before p.test)" --read)
expect_match "p.test served by the first upstream" '"target": "/before"' "$out"
expect_eq "... which is the second stub" 1 "$(gk_count_lines '"/before"' "$STUB_B")"
old_requests=$(jq -s '[.[] | select(.target != null)] | length' "$STUB_B")
gk_bg "$T/ka2.log" python3 "$GK_HERE/keepalive_clients.py" "$GK_PORT" p.test 3 "$P/edge.pem" "$P/edge.key" \
  "$P/srvca/ca.pem" "$T/phase2b"
KA2=$LAST_PID
for _ in $(seq 1 300); do grep -q phase1 "$T/ka2.log" 2>/dev/null && break; sleep 0.1; done
old_requests=$(jq -s '[.[] | select(.target != null)] | length' "$STUB_B")
reloads() { grep -c 'event=gk_reloaded' "$T/gk.log" || true; }
before=$(reloads)
a_lines=$(wc -l <"$STUB_A")
write_config "$STUB"
kill -HUP "$GK_PID"
for _ in $(seq 1 100); do (($(reloads) > before)) && break; sleep 0.1; done
expect_eq "the reload was applied" "$((before + 1))" "$(reloads)"
touch "$T/phase2b"
wait "$KA2" || true
expect_eq "kept-alive clients' next requests after the reload succeed" "phase2 ok=3" "$(grep phase2 "$T/ka2.log" || true)"
for i in 1 2 3; do gk_hc p.test --send "$(req /after p.test)" --read >/dev/null; done
expect_eq "the old upstream got no request after the reload" "$old_requests" \
  "$(jq -s '[.[] | select(.target != null)] | length' "$STUB_B")"
expect_eq "the new upstream got every request after it" 6 \
  "$(tail -n +"$((a_lines + 1))" "$STUB_A" | jq -s '[.[] | select(.target == "/after" or .target == "/ka")] | length')"
gk_finish
