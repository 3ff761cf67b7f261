#!/usr/bin/env bash
# Request rules of http mode against real upstreams (issue 15, findings 1-4, 14-16): nginx
# with two vhosts shows which vhost a request target reaches and which upgrade headers
# arrive; a scripted stub upstream logs every request exactly as it arrived. Each request
# is written byte for byte by httpclient.py over TLS to the gatekeeper.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
gk_stub
STUB=$UP_PORT
NGX_PORT=$(gk_free_port)
GK_PORT=$(gk_free_port)

mkdir -p "$T/nginx"
cat >"$T/nginx.conf" <<CONF
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fcgi; uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  server {
    listen 127.0.0.1:$NGX_PORT default_server;
    return 200 "vhost=default\n";
  }
  server {
    listen 127.0.0.1:$NGX_PORT;
    server_name a.test;
    return 200 "vhost=a upgrade=[\$http_upgrade] settings=[\$http_http2_settings] verify=[\$http_x_client_verify]\n";
  }
  server {
    listen 127.0.0.1:$NGX_PORT;
    server_name b.test;
    return 200 "vhost=b verify=[\$http_x_client_verify]\n";
  }
}
CONF
gk_bg "$T/nginx/stderr.log" nginx -c "$T/nginx.conf" -p "$T/nginx"
gk_wait_port "$NGX_PORT"

cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT"]
workers = 1
edge_ranges_file = "$T/none.json"
idle_timeout = "5s"

# a.test: no client certificate needed; b.test: required. Same nginx behind both.
[[host]]
names = ["a.test"]
cert = "$P/srv-a.pem"
key = "$P/srv-a.key"
mtls = "off"
upstream = "127.0.0.1:$NGX_PORT"

[[host]]
names = ["b.test"]
cert = "$P/srv-b.pem"
key = "$P/srv-b.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$NGX_PORT"

# The stub: n.test anonymous, p.test with the edge certificate (verified edge).
[[host]]
names = ["n.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
mtls = "off"
upstream = "127.0.0.1:$STUB"

[[host]]
names = ["p.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
mtls = "optional"
upstream = "127.0.0.1:$STUB"
TOML
gk_start
EDGE=(--cert "$P/edge.pem" --key "$P/edge.key")
req() {  # target host [extra header lines with \r\n]
  printf 'GET %s HTTP/1.1\\r\\nHost: %s\\r\\n%s\\r\\n' "$1" "$2" "${3:-}"
}
# The last stub request as JSON (jq filter on it): stub_last FILTER
stub_last() { grep '"method"' "$STUB_LOG" | tail -n 1 | jq -c "$1"; }
# The stub connection of the last request to PATH (for gk_stub_wait_closed).
stub_conn_of() { grep -F "\"$1\"" "$STUB_LOG" | grep '"method"' | tail -n 1 | jq '.conn'; }
stub_count() { grep -c '"method"' "$STUB_LOG" || true; }

# --- finding 1: any scheme://authority target is Host-checked; forms an origin never gets are refused
expect_match "baseline: SNI a.test, Host a.test reaches vhost a" '^status=200 .*vhost=a ' "$(gk_hc a.test --send "$(req / a.test)" --read)"
for scheme in foo ws wss h2 HTTP git+ssh; do
  out=$(gk_hc a.test --send "$(req "$scheme://b.test/" a.test)" --read)
  expect_match "absolute-form $scheme://b.test/ over SNI a.test without a cert: 421, never vhost b" '^status=421 ' "$out"
done
expect_match "absolute-form HTTP://B.TEST:80/ (case, port): 421" '^status=421 ' "$(gk_hc a.test --send "$(req HTTP://B.TEST:80/ a.test)" --read)"
expect_match "absolute-form foo://a.test/ (own authority, not http/https): 400" '^status=400 ' "$(gk_hc a.test --send "$(req foo://a.test/ a.test)" --read)"
expect_match "absolute-form http://a.test/x: 200 vhost a" '^status=200 .*vhost=a ' "$(gk_hc a.test --send "$(req http://a.test/x a.test)" --read)"
expect_match "absolute-form without an authority (http:b.test/): 400" '^status=400 ' "$(gk_hc a.test --send "$(req http:b.test/ a.test)" --read)"
expect_match "userinfo in the authority (http://a.test@b.test/): 400" '^status=400 ' "$(gk_hc a.test --send "$(req http://a.test@b.test/ a.test)" --read)"
for target in 'http://a.test#@b.test/' 'http://a.test?@b.test/' 'http://a.test\\@b.test/' '/x#frag'; do
  expect_match "fragment, or '@' before the path however the authority ends ($target): 400" '^status=400 ' \
    "$(gk_hc a.test --send "$(req "$target" a.test)" --read)"
done
# nginx takes a bracketed name for a name of its own and routes it to its default server
# (often the first vhost: another policy's): brackets hold an IPv6 address, nothing else.
for hv in '[a.test]' '[a.test]:443'; do
  expect_match "Host $hv over SNI a.test: 400, never nginx's default server" '^status=400 ' "$(gk_hc a.test --send "$(req / "$hv")" --read)"
done
expect_match "absolute-form http://[a.test]/: 400" '^status=400 ' "$(gk_hc a.test --send "$(req 'http://[a.test]/' a.test)" --read)"
expect_match "authority-form on GET (b.test:443): 400" '^status=400 ' "$(gk_hc a.test --send "$(req b.test:443 a.test)" --read)"
expect_match "a target that is no form at all (b.test/x): 400" '^status=400 ' "$(gk_hc a.test --send "$(req b.test/x a.test)" --read)"
out=$(gk_hc a.test --send 'CONNECT b.test:443 HTTP/1.1\r\nHost: b.test:443\r\n\r\n' --read)
expect_match "CONNECT: 501" '^status=501 ' "$out"
out=$(gk_hc a.test --send 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n' --read)
expect_match "CONNECT to its own host: 501" '^status=501 ' "$out"
expect_match "asterisk-form on GET: 400" '^status=400 ' "$(gk_hc n.test --send "$(req '*' n.test)" --read)"
out=$(gk_hc n.test --send 'OPTIONS * HTTP/1.1\r\nHost: n.test\r\n\r\n' --read)
expect_match "OPTIONS * reaches the upstream" '^status=200 .*"target": "\*"' "$out"
expect_match "origin-form //b.test/ is a path: vhost a (Host decides)" '^status=200 .*vhost=a ' "$(gk_hc a.test --send "$(req //b.test/ a.test)" --read)"
out=$(gk_hc a.test --send "$(req / a.test)$(req / b.test)" --read --read)
expect_match "pipelined second request with another Host: first served, second 421" 'status=200 .*vhost=a .*status=421 ' "$(tr '\n' ' ' <<<"$out")"

# --- finding 2: h2c upgrades and HTTP2-Settings never reach the upstream
out=$(gk_hc a.test --send "$(req / a.test 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n')" --read)
expect_match "Upgrade: h2c and HTTP2-Settings removed (nginx sees neither)" '^status=200 .*upgrade=\[\] settings=\[\]' "$out"
out=$(gk_hc a.test --send "$(req / a.test 'Connection: upgrade\r\nUpgrade: websocket, h2c\r\n')" --read)
expect_match "Upgrade: websocket, h2c (not websocket alone) removed" '^status=200 .*upgrade=\[\]' "$out"
before=$(stub_count)
out=$(gk_hc n.test --send "$(req /switch n.test 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n')" --read --send "$(req / b.test 'X-Client-Verify: SUCCESS\r\n')" --end)
expect_match "h2c asked, stub answers 101: 502 to the client" '^status=502 ' "$out"
expect_eq "... and the gatekeeper closed that upstream connection" closed "$(gk_stub_wait_closed "$(stub_conn_of /switch)")"
expect_eq "the stub saw the upgrade request only, never a second request" "$((before + 1))" "$(stub_count)"
expect_eq "nothing was spliced to the stub" 0 "$(grep -c '"spliced"' "$STUB_LOG" || true)"
expect_eq "the stub got no Upgrade/HTTP2-Settings header" "[]" "$(grep '"/switch"' "$STUB_LOG" | tail -n 1 | jq -c '[.headers[] | select(.[0] | ascii_downcase | test("upgrade|http2-settings"))]')"

# --- finding 16: a 101 the request did not ask for is a 502, never a splice
out=$(gk_hc n.test --send "$(req /switch n.test)" --read --send "$(req / n.test)" --end)
expect_match "no upgrade asked, stub answers 101: 502" '^status=502 ' "$out"
expect_eq "... and the gatekeeper closed that upstream connection" closed "$(gk_stub_wait_closed "$(stub_conn_of /switch)")"
expect_eq "still nothing spliced to the stub" 0 "$(grep -c '"spliced"' "$STUB_LOG" || true)"

# WebSocket: relayed, after the Host check
WS='Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
out=$(gk_hc n.test --send "$(req /ws n.test "$WS")" --read --send 'frame-bytes' --end)
expect_match "WebSocket upgrade: 101 then the stream is relayed both ways" "status=101 .*end=data:b'frame-bytes'" "$(tr '\n' ' ' <<<"$out")"
expect_eq "the upstream got Connection: upgrade and Upgrade: websocket" '[["Connection","upgrade"],["Upgrade","websocket"]]' \
  "$(grep '"/ws"' "$STUB_LOG" | tail -n 1 | jq -c '[.headers[] | select(.[0] | ascii_downcase | test("^(connection|upgrade)$"))]')"
expect_match "WebSocket upgrade with a foreign Host: 421" '^status=421 ' "$(gk_hc n.test --send "$(req /ws b.test "$WS")" --read)"
expect_match "WebSocket asked, upstream switches to h2c instead: 502" '^status=502 ' "$(gk_hc n.test --send "$(req /ws-h2c n.test "$WS")" --read)"
out=$(gk_hc n.test --send "POST /ws HTTP/1.1\\r\\nHost: n.test\\r\\n${WS}Content-Length: 2\\r\\n\\r\\nab" --read)
expect_match "an upgrade on a request with a body is not relayed: the stub's 101 is unasked, 502" '^status=502 ' "$out"
expect_eq "... the upstream saw no Upgrade header" "[]" "$(stub_last '[.headers[] | select(.[0] | ascii_downcase == "upgrade")]')"

# --- finding 3: header names compared normalised; identity headers always present
out=$(gk_hc n.test --send "$(req /h n.test 'X_Client_Verify: SUCCESS\r\nX_Client_Cert_SHA256: forged\r\nX_Client_Subject: CN=forged\r\nCF_Connecting_IP: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nx.client.verify: SUCCESS\r\nTrue_Client_IP: 6.6.6.6\r\n')" --read)
expect_match "underscore spellings: request served" '^status=200 ' "$out"
expect_eq "no spoofed value reached the upstream" "" "$(grep -E 'forged|6\.6\.6\.6|SUCCESS' <<<"$(stub_last '.headers')" || true)"
expect_eq "identity headers always emitted (empty without a certificate)" \
  '[["X-Client-Verify","NONE"],["X-Client-Cert-SHA256",""],["X-Client-Subject",""]]' \
  "$(stub_last '[.headers[] | select(.[0] | ascii_downcase | startswith("x-client"))]')"
gk_hc n.test --send "$(req /h n.test 'Connection: keep-alive, X-Client-Verify, X-Drop-Me\r\nX-Drop-Me: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nProxy-Connection: keep-alive\r\n')" --read >/dev/null
expect_eq "Connection tokens: the headers they name and hop-by-hop headers removed, Connection rebuilt" \
  '[["X-Client-Verify","NONE"]]' \
  "$(stub_last '[.headers[] | select(.[0] | ascii_downcase | test("^(connection|x-drop-me|keep-alive|te|trailer|proxy-connection|x-client-verify)$"))]')"
out=$(gk_hc n.test --send 'POST /h HTTP/1.1\r\nHost: n.test\r\nConnection: Content-Length, Host\r\nContent-Length: 5\r\n\r\nhello' --read)
expect_match "Connection naming Content-Length/Host removes neither (framing kept)" '^status=200 .*"body_len": 5' "$out"
out=$(gk_hc n.test --send 'GET /h HTTP/1.0\r\nHost: n.test\r\nConnection: keep-alive, X-Client-Subject\r\n\r\n' --read)
expect_eq "HTTP/1.0 keep-alive goes up as Connection: keep-alive only" '[["Connection","keep-alive"]]' "$(stub_last '[.headers[] | select(.[0] | ascii_downcase == "connection")]')"
expect_match "Content_Length spelling next to Content-Length: 400" '^status=400 ' "$(gk_hc n.test --send 'POST /h HTTP/1.1\r\nHost: n.test\r\nContent-Length: 5\r\nContent_Length: 0\r\n\r\nhello' --read)"
expect_match "Transfer_Encoding spelling: 400" '^status=400 ' "$(gk_hc n.test --send 'POST /h HTTP/1.1\r\nHost: n.test\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello' --read)"
gk_hc n.test --send "$(req /cip n.test 'Client-IP: 6.6.6.6\r\nClient_IP: 6.6.6.6\r\nX-Originating-IP: 6.6.6.6\r\nX-Remote-IP: 6.6.6.6\r\nX-Remote-Addr: 6.6.6.6\r\nX-Original-Forwarded-For: 6.6.6.6\r\n')" --read >/dev/null
expect_eq "unverified peer: the other client-address headers (Client-IP, X-Originating-IP, ...) removed" '["/cip",0]' \
  "$(stub_last '[.target, ([.headers[] | select(.[1] == "6.6.6.6")] | length)]')"
FWD='X-Forwarded-Host: b.test\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\nForwarded: for=6.6.6.6;host=b.test\r\nCF-Visitor: {"scheme":"http"}\r\nCF-IPCountry: T1\r\nCf-Access-Authenticated-User-Email: admin@example.com\r\nX-Real-IP: 6.6.6.6\r\n'
gk_hc n.test --send "$(req /h n.test "$FWD")" --read >/dev/null
expect_eq "unverified peer: forwarding and CF-* headers removed" '[]' \
  "$(stub_last '[.headers[] | select(.[0] | ascii_downcase | test("^(x-forwarded-|forwarded|cf-|x-real-ip)"))]')"
gk_hc p.test "${EDGE[@]}" --send "$(req /h p.test "$FWD")" --read >/dev/null
expect_eq "verified edge: CF-* and X-Forwarded-* kept, X-Forwarded-Host removed" \
  '["X-Forwarded-Proto","X-Forwarded-Port","Forwarded","CF-Visitor","CF-IPCountry","Cf-Access-Authenticated-User-Email","X-Real-IP"]' \
  "$(stub_last '[.headers[] | select(.[0] | ascii_downcase | test("^(x-forwarded-|forwarded|cf-|x-real-ip)")) | .[0]]')"

# --- finding 4: every chunked-body parser state is bounded
hwm0=$(gk_hwm "$GK_PID")
POST_CHUNKED='POST /c HTTP/1.1\r\nHost: n.test\r\nTransfer-Encoding: chunked\r\n\r\n'
out=$(gk_hc n.test --send "${POST_CHUNKED}5;ext=" --flood 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' 33554432 --read)
expect_match "chunk-extension flood (no CRLF): 400" 'status=400 ' "$out"
expect_match "... after little was read" 'flood_sent=[0-9]{1,7}$' "$(head -n 1 <<<"$out")"
out=$(gk_hc n.test --send "${POST_CHUNKED}" --flood '0000000000000000000000000000000000000000000000000000000000000000' 33554432 --read)
expect_match "chunk-size line flood: 400" 'status=400 ' "$out"
out=$(gk_hc n.test --send "${POST_CHUNKED}0\\r\\n" --flood 'X-Trailer: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n' 33554432 --read)
expect_match "endless trailer section: 400" 'status=400 ' "$out"
hwm1=$(gk_hwm "$GK_PID")
if ((hwm1 - hwm0 < 16384)); then pass "peak RSS stays bounded through the floods (+$((hwm1 - hwm0)) KiB)"; else failcase "peak RSS grew by $((hwm1 - hwm0)) KiB"; fi
out=$(gk_hc n.test --send "${POST_CHUNKED}5;name=\"quoted\"\\r\\nhello\\r\\n000\\r\\nX-T: 1\\r\\n\\r\\n" --read)
expect_match "a chunked body with extensions and trailers is still served" '^status=200 ' "$out"
expect_eq "... forwarded with plain chunk framing: no extension, no trailer" '"5\r\nhello\r\n0\r\n\r\n"' "$(stub_last '.body_raw')"

out=$(gk_hc n.test --send "${POST_CHUNKED}0000000005\\r\\nhello\\r\\n0\\r\\nX-Client-Verify: SUCCESS\\r\\nCF-Connecting-IP: 6.6.6.6\\r\\n\\r\\n$(req /second n.test)" --read --read)
expect_match "trailers carrying identity headers, then a pipelined request: both served" 'status=200 .*status=200 .*"target": "/second"' "$(tr '\n' ' ' <<<"$out")"
expect_eq "... the first body went up as plain chunks, no trailer" '"5\r\nhello\r\n0\r\n\r\n"' "$(grep '"/c"' "$STUB_LOG" | tail -n 1 | jq -c '.body_raw')"
expect_eq "... the second request carries only the gatekeeper's identity" '[["X-Client-Verify","NONE"]]' \
  "$(stub_last '[.headers[] | select(.[0] | test("Verify|Connecting"))]')"
expect_match "chunk size beyond int64 (ffffffffffffffff): 400" '^status=400 ' "$(gk_hc n.test --send "${POST_CHUNKED}ffffffffffffffff\\r\\nhello" --read)"

# --- finding 15: a malformed chunked body gets a 400
for body in '5 \r\nhello\r\n0\r\n\r\n' 'x\r\nhello\r\n0\r\n\r\n' '5\r\nhelloXX0\r\n\r\n' '5\nhello\r\n0\r\n\r\n' '-5\r\nhello\r\n0\r\n\r\n'; do
  out=$(gk_hc n.test --send "${POST_CHUNKED}${body}" --read)
  expect_match "malformed chunked body ${body//\\/\\\\}: 400" '^status=400 ' "$out"
done

# --- finding 14: Expect: 100-continue
start=$SECONDS
out=$(gk_hc n.test --send 'POST /e HTTP/1.0\r\nHost: n.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello' --read)
expect_match "HTTP/1.0 with Expect (ignored): 200 with the body" '^status=200 .*"body_len": 5' "$out"
expect_eq "... without a 100 to the 1.0 client" "" "$(grep interim <<<"$out" || true)"
expect_eq "... and without Expect to the upstream" "[]" "$(stub_last '[.headers[] | select(.[0] | ascii_downcase == "expect")]')"
if ((SECONDS - start < 4)); then pass "... at once (not after idle_timeout)"; else failcase "HTTP/1.0 Expect took $((SECONDS - start)) s"; fi
echo -n hello >"$T/five"
start=$SECONDS
code=$(gk_curl n.test /e --expect100-timeout 30 -H 'Expect: 100-continue' --data-binary @"$T/five")
expect_eq "HTTP/1.1 Expect, the upstream sends no 100, curl waits 30 s for one: 200" 200 "$code"
expect_match "... the upstream got the body" '"body_len": 5' "$(cat "$T/body")"
if ((SECONDS - start < 4)); then pass "... after a short wait"; else failcase "Expect without an upstream 100 took $((SECONDS - start)) s"; fi
out=$(gk_hc n.test --send 'POST /e HTTP/1.1\r\nHost: n.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n' --read --send hello --read)
expect_match "... the gatekeeper's own 100 Continue, then the final answer" 'interim=100 status=200 .*"body_len": 5' "$(tr '\n' ' ' <<<"$out")"
out=$(gk_hc n.test --send 'POST /early-slow HTTP/1.1\r\nHost: n.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n' --read)
expect_match "Expect: a final answer before the body, slow to finish, arrives whole (no 100 inside it)" "^status=401 body=b'helloworld'\$" "$out"

# --- limits of the request line and header
long=$(head -c 20000 /dev/zero | tr '\0' a)
expect_match "request line over max_header_bytes: 414" '^status=414 .*414 URI Too Long' "$(gk_hc n.test --send "GET /$long HTTP/1.1\\r\\nHost: n.test\\r\\n\\r\\n" --read)"
expect_match "header over max_header_bytes: 431" '^status=431 ' "$(gk_hc n.test --send "$(req / n.test "X-Big: $long\\r\\n")" --read)"
half=$(head -c 10000 /dev/zero | tr '\0' a)
expect_match "request line and fields each under max_header_bytes, together over it: 431" '^status=431 ' \
  "$(gk_hc n.test --send "$(req "/$half" n.test "X-Half: $half\\r\\n")" --read)"
gk_finish
