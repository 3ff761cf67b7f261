#!/usr/bin/env bash
# Response side of http mode against a misbehaving stub upstream (issue 15, findings 7, 9, 10,
# 16): large response headers, late bytes that would poison the next response, responses cut
# by a FIN, a reset or a TLS truncation, and 101s nobody asked for.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
gk_stub
STUB=$UP_PORT
STUB_LOG_PLAIN=$STUB_LOG
gk_stub "$P/srv-misc.pem" "$P/srv-misc.key"
TLS_STUB=$UP_PORT
TLS_STUB_LOG=$STUB_LOG
GK_PORT=$(gk_free_port)
cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT"]
workers = 1
edge_ranges_file = "$T/none.json"
idle_timeout = "5s"

[[host]]
names = ["n.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
upstream = "127.0.0.1:$STUB"

[[host]]
names = ["w.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
upstream = "127.0.0.1:$TLS_STUB"
upstream_tls = true
upstream_ca = "$P/srvca/ca.pem"
upstream_server_name = "z.test"

[[host]]
names = ["t.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
mode = "tcp"
upstream = "127.0.0.1:$STUB"
TOML
gk_start
req() { printf 'GET %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' "$1" "$2"; }
head_req() { printf 'HEAD %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' "$1" "$2"; }
lines() { tr '\n' ' ' <<<"$1"; }
switch_conn() { grep -F '"/switch"' "$1" | tail -n 1 | jq '.conn'; }
# Each late/unasked response is sent before the next request goes: its "late_sent" record.
late_sent() { echo "$(($(gk_count_lines '"late_sent"' "$1") + 1))"; }

# --- finding 7: response headers up to max_response_header_bytes (64 KiB by default)
expect_match "12 KB upstream response header: 200" "^status=200 body=b'big'" "$(gk_hc n.test --send "$(req /bigheader n.test)" --read)"

expect_match "response with Content-Length and Transfer-Encoding: 502" '^status=502 ' "$(gk_hc n.test --send "$(req /cl-te n.test)" --read)"
out=$(gk_hc n.test --send "$(req /trailer-flood n.test)" --read)
expect_match "a response trailer section that never ends: cut after the limit, an unclean end" "^status=200 body=b'abc' how=(reset|eof)" "$out"

# --- finding 9: an upstream connection with unread bytes or EOF pending is never reused
for host in n.test w.test; do
  log=$STUB_LOG_PLAIN
  [[ $host == w.test ]] && log=$TLS_STUB_LOG
  out=$(gk_hc $host --send "$(req /late $host)" --read --wait-lines "$log" '"late_sent"' "$(late_sent "$log")" \
    --send "$(req /next $host)" --read)
  expect_match "$host: late second response after 200 ok: the next request gets its own answer" \
    "status=200 body=b'ok' status=200 body=b'\\{\"method\": \"GET\", \"target\": \"/next\"" "$(lines "$out")"
  out=$(gk_hc $host --send "$(head_req /head-late $host)" --read-head --wait-lines "$log" '"late_sent"' "$(late_sent "$log")" \
    --send "$(req /next $host)" --read)
  expect_match "$host: HEAD answered with a late body: the next request gets its own answer" \
    "status=200 body=b'' status=200 body=b'\\{\"method\": \"GET\", \"target\": \"/next\"" "$(lines "$out")"
  out=$(gk_hc $host --send "$(req /204-late $host)" --read --wait-lines "$log" '"late_sent"' "$(late_sent "$log")" \
    --send "$(req /next $host)" --read)
  expect_match "$host: 204 followed by late bytes: the next request gets its own answer" \
    "status=204 body=b'' status=200 body=b'\\{\"method\": \"GET\", \"target\": \"/next\"" "$(lines "$out")"
done
out=$(gk_hc n.test --send "$(req /a n.test)" --read --send "$(req /b n.test)" --read)
# /b is not its upstream connection's first request (with upstream_keepalive an earlier client's
# exchange may have used it too: n counts them all).
expect_match "a clean keep-alive upstream connection is still reused" '"target": "/b".*"n": [1-9]' "$(lines "$out")"

# --- finding 10: a response that cannot be completed cuts the client connection (no close_notify)
out=$(gk_hc n.test --send "$(req /truncate n.test)" --read)
expect_match "Content-Length body cut by the upstream's FIN: the client sees an unclean end" "^status=200 body=b'0123456789' how=(reset|eof)" "$out"
out=$(gk_hc n.test --send "$(req /reset n.test)" --read)
expect_match "close-delimited body cut by a TCP reset: the client sees an unclean end" "^status=200 body=b'partial body' how=(reset|eof)" "$out"
out=$(gk_hc w.test --send "$(req /eof-body w.test)" --read)
expect_match "TLS upstream closes without close_notify mid-body: the client sees an unclean end" "^status=200 body=b'body until eof' how=(reset|eof)" "$out"
out=$(gk_hc w.test --send "$(req /truncate w.test)" --read)
expect_match "TLS upstream cuts a Content-Length body: the client sees an unclean end" "^status=200 body=b'0123456789' how=(reset|eof)" "$out"
out=$(gk_hc t.test --send "$(req /reset t.test)" --read)
expect_match "tcp mode: an upstream reset reaches the client as a reset" "^status=200 body=b'partial body' how=(reset|eof)" "$out"
out=$(gk_hc t.test --send "$(req /eof-body t.test)" --read --end)
expect_match "tcp mode: the upstream's FIN ends the client's stream with close_notify" "^status=200 body=b'body until eof' end=close_notify" "$(lines "$out")"
out=$(gk_hc n.test --send "$(req /eof-body n.test)" --read --end)
expect_match "close-delimited body ended by a plain FIN is complete: close_notify" "^status=200 body=b'body until eof' end=close_notify" "$(lines "$out")"

# --- findings 2/16: a 101 turns into a splice only for an upgrade that was asked for and allowed
out=$(gk_hc n.test --send "$(req /switch n.test)" --read --send "$(req /second b.test)" --end)
expect_match "101 to a request without Upgrade: 502" '^status=502 ' "$out"
out=$(gk_hc w.test --send "$(req /switch w.test)" --read --send "$(req /second b.test)" --end)
expect_match "101 from a TLS upstream to a request without Upgrade: 502" '^status=502 ' "$out"
# Once the stubs saw those upstream connections end, everything sent on them is in their logs.
expect_eq "the gatekeeper closed both upstream connections" "closed closed" \
  "$(gk_stub_wait_closed "$(switch_conn "$STUB_LOG_PLAIN")" "$STUB_LOG_PLAIN") $(gk_stub_wait_closed "$(switch_conn "$TLS_STUB_LOG")" "$TLS_STUB_LOG")"
expect_eq "the stubs never got a byte after the 101" 0 "$(cat "$STUB_LOG_PLAIN" "$TLS_STUB_LOG" | grep -c '"spliced"' || true)"
expect_eq "the stubs never saw the second request" 0 "$(cat "$STUB_LOG_PLAIN" "$TLS_STUB_LOG" | grep -c '/second' || true)"
gk_finish
