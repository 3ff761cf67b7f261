#!/usr/bin/env bash
# The issue's attack matrix against real clients (curl, openssl s_client): every bypass
# attempt gets its exact refusal, and the good paths get through with the identity headers.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
gk_upstream http
GK_PORT=$(gk_free_port)
METRICS_PORT=$(gk_free_port)
ZONE_PIN=$(spki_pin "$T/pki/zone/ca.pem")
echo '{"version":1,"generated_at":"2026-01-01T00:00:00Z","ipv4":["127.0.0.2/32"],"ipv6":[]}' >"$T/edge.json"
host() {  # names cert extra...
  printf '[[host]]\nnames = %s\ncert = "%s.pem"\nkey = "%s.key"\nupstream = "127.0.0.1:%s"\n' "$1" "$P/$2" "$P/$2" "$UP_PORT"
  shift 2
  printf '%s\n' "$@"
  echo
}
{
  printf '[gatekeeper]\nlisten = ["127.0.0.1:%s"]\nworkers = 2\nedge_ranges_file = "%s"\nheader_timeout = "2s"\nmax_header_bytes = 16384\nmetrics_listen = "127.0.0.1:%s"\n\n' "$GK_PORT" "$T/edge.json" "$METRICS_PORT"
  host '["a.test"]' srv-a "client_ca = \"$P/global/ca.pem\"" "crl = \"$P/global.crl\""
  host '["b.test"]' srv-b "client_ca = \"$P/global/ca.pem\"" 'on_failure = "496"' 'session_timeout = "2s"'
  host '["z.test"]' srv-misc "client_ca = \"$P/global+zone.pem\"" "pin_spki_sha256 = [\"$ZONE_PIN\"]" 'on_failure = "403"'
  host '["o.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"" 'on_failure = "close"'
  host '["e.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"" 'require_edge_ip = true'
  host '["n.test"]' srv-misc 'mtls = "off"'
  host '["p.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"" 'mtls = "optional"'
  host '["r.test"]' srv-rsa "client_ca = \"$P/global/ca.pem\""
  host '["t.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"" 'session_tickets = false'
} >"$T/gk.toml"
gk_start

EDGE=(--cert "$P/edge.pem" --key "$P/edge.key")
err() { tr -d '\n' <"$T/curl.err"; }

# --- good path
code=$(gk_curl a.test /hello "${EDGE[@]}")
expect_eq "edge cert to a.test: 200" 200 "$code"
expect_match "upstream sees X-Client-Verify: SUCCESS" '"X-Client-Verify": "SUCCESS"' "$(cat "$T/body")"
expect_match "upstream sees the cert SHA-256" "\"X-Client-Cert-SHA256\": \"$(openssl x509 -in "$P/edge.pem" -outform der | sha256sum | cut -d' ' -f1)\"" "$(cat "$T/body")"
expect_eq "RSA-2048 server key host: 200" 200 "$(gk_curl r.test / "${EDGE[@]}")"

# --- client certificate attacks
code=$(gk_curl a.test / )
expect_match "no client cert: alert certificate required" "000 .*certificate required" "$code $(err)"
code=$(gk_curl a.test / --cert "$P/other.pem" --key "$P/other.key")
expect_match "other zone's CA: alert unknown ca" "000 .*unknown ca" "$code $(err)"
code=$(gk_curl a.test / --cert "$P/revoked.pem" --key "$P/revoked.key")
expect_match "revoked (CRL): alert certificate revoked" "000 .*certificate revoked" "$code $(err)"
code=$(gk_curl a.test / --cert "$P/expired.pem" --key "$P/expired.key")
expect_match "expired: alert certificate expired" "000 .*certificate expired" "$code $(err)"
code=$(gk_curl a.test / --cert "$P/future.pem" --key "$P/future.key")
expect_match "not yet valid: alert bad certificate" "000 .*bad certificate" "$code $(err)"
expect_eq "global CA cert to host pinned to its zone CA: 403" 403 "$(gk_curl z.test / "${EDGE[@]}")"
expect_eq "zone cert to the pinned host: 200" 200 "$(gk_curl z.test / --cert "$P/zone.pem" --key "$P/zone.key")"
expect_eq "no cert, on_failure=496: 496" 496 "$(gk_curl b.test /)"
code=$(gk_curl o.test /)
expect_match "no cert, on_failure=close: closed without a response" "000 .*(Empty reply|unexpected eof|reset)" "$code $(err)"
expect_eq "mtls optional, no cert: 200" 200 "$(gk_curl p.test /)"
expect_match "mtls optional: X-Client-Verify NONE" '"X-Client-Verify": "NONE"' "$(cat "$T/body")"
code=$(gk_curl p.test / --cert "$P/other.pem" --key "$P/other.key")
expect_match "mtls optional, bad cert: alert unknown ca" "000 .*unknown ca" "$code $(err)"

# --- SNI attacks
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -k "${EDGE[@]}" "https://127.0.0.1:$GK_PORT/" 2>"$T/curl.err" || true)
expect_match "no SNI: alert unrecognized name" "000 .*unrecognized name" "$code $(err)"
code=$(gk_curl x.test / "${EDGE[@]}")
expect_match "unknown SNI: alert unrecognized name" "000 .*unrecognized name" "$code $(err)"
out=$(openssl s_client -connect "127.0.0.1:$GK_PORT" -noservername -cert "$P/edge.pem" -key "$P/edge.key" </dev/null 2>&1 || true)
expect_match "no SNI (s_client): unrecognized name" "unrecognized name" "$out"
expect_eq "SNI a.test with Host b.test: 421" 421 "$(gk_curl a.test / "${EDGE[@]}" -H 'Host: b.test')"
expect_eq "SNI a.test with absolute-form b.test: 421" 421 "$(gk_curl a.test / "${EDGE[@]}" --request-target https://b.test/)"

# --- spoofed client IP headers
gk_curl n.test / -H 'CF-Connecting-IP: 6.6.6.6' -H 'X-Forwarded-For: 6.6.6.6' -H 'True-Client-IP: 6.6.6.6' -H 'X-Client-Verify: SUCCESS' >/dev/null
body=$(cat "$T/body")
if [[ $body != *6.6.6.6* && $body == *'"X-Client-Verify": "NONE"'* ]]; then pass "spoofed CF-Connecting-IP/XFF/True-Client-IP/X-Client-Verify from unverified peer removed"; else failcase "spoofed headers reached upstream: $body"; fi
gk_curl a.test / "${EDGE[@]}" -H 'CF-Connecting-IP: 198.51.100.9' >/dev/null
expect_match "CF-Connecting-IP from verified edge kept" '"Cf-Connecting-Ip": "198.51.100.9"|"CF-Connecting-IP": "198.51.100.9"' "$(cat "$T/body")"

# --- require_edge_ip (snapshot lists 127.0.0.2 only)
code=$(gk_curl e.test / "${EDGE[@]}" --interface 127.0.0.1)
expect_match "require_edge_ip from non-edge source: alert access denied" "000 .*access denied" "$code $(err)"
expect_eq "require_edge_ip from edge source: 200" 200 "$(gk_curl e.test / "${EDGE[@]}" --interface 127.0.0.2)"

# --- session resumption: served on the same host (TLS 1.2 session id and ticket, TLS 1.3
# ticket; session ids also on t.test, a session_tickets = false host), never across hosts
req() { printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1"; }
sclient() {  # host session-file(-sess_out|-sess_in) version-args...: the request's whole s_client output
  local h=$1 io=$2 file=$3; shift 3
  req "$h" | timeout 10 openssl s_client "$@" -connect "127.0.0.1:$GK_PORT" -servername "$h" -cert "$P/edge.pem" \
    -key "$P/edge.key" "$io" "$file" -ign_eof 2>&1 || true
}
for hv in "a.test -tls1_2 -no_ticket" "a.test -tls1_2" "a.test -tls1_3" "t.test -tls1_2 -no_ticket" "t.test -tls1_2"; do
  read -r h v <<<"$hv"
  f="$T/sess-$h${v// /}"
  out=$(sclient "$h" -sess_out "$f" $v)
  expect_match "first connection to $h ($v): 200" 'HTTP/1.1 200' "$out"
  out=$(sclient "$h" -sess_in "$f" $v)
  expect_match "resume on the same host $h ($v): Reused" $'(^|\n)Reused,' "$out"
  expect_match "resume on the same host $h ($v): HTTP 200" 'HTTP/1.1 200' "$out"
  for other in a.test b.test t.test; do
    [[ $other == "$h" ]] && continue
    out=$(sclient "$other" -sess_in "$f" $v)
    expect_match "session from $h offered to $other ($v): full handshake" $'(^|\n)New,' "$out"
    expect_match "session from $h offered to $other ($v): served after it" 'HTTP/1.1 200' "$out"
  done
done

# --- TLS 1.2 renegotiation (a second ClientHello, perhaps for another SNI) is refused
out=$( (printf 'R\n'; sleep 1) | timeout 10 openssl s_client -tls1_2 -connect "127.0.0.1:$GK_PORT" -servername a.test \
  -cert "$P/edge.pem" -key "$P/edge.key" 2>&1 || true)
expect_match "client-initiated renegotiation: refused" 'RENEGOTIATING.*no renegotiation' "$(tr '\n' ' ' <<<"$out")"

# --- session lifetime per host: b.test's 2 s, though connections start on a.test's context
for v in "-tls1_2 -no_ticket" -tls1_2 -tls1_3; do
  out=$(req b.test | openssl s_client $v -connect "127.0.0.1:$GK_PORT" -servername b.test -cert "$P/edge.pem" -key "$P/edge.key" -sess_out "$T/sessb${v// /}" -ign_eof 2>&1 || true)
  [[ $v == -tls1_3 ]] && expect_match "b.test session_timeout 2s: ticket lifetime hint 2 s" 'lifetime hint: 2 ' "$out"
  again=$(sclient b.test -sess_in "$T/sessb${v// /}" $v)
  expect_match "b.test session within 2 s ($v): Reused" $'(^|\n)Reused,' "$again"
  expect_match "b.test session within 2 s ($v): HTTP 200" 'HTTP/1.1 200' "$again"
done
sleep 3
for v in "-tls1_2 -no_ticket" -tls1_2 -tls1_3; do
  late=$(req b.test | openssl s_client $v -connect "127.0.0.1:$GK_PORT" -servername b.test -cert "$P/edge.pem" -key "$P/edge.key" -sess_in "$T/sessb${v// /}" -ign_eof 2>&1 | grep -E '^(New|Reused),' || true)
  expect_match "b.test session after 3 s ($v): expired, full handshake" '^New' "$late"
done

# --- limits
out=$(python3 "$GK_HERE/slowclient.py" "$GK_PORT" a.test "$P/edge.pem" "$P/edge.key" "$P/srvca/ca.pem")
expect_match "slowloris header (header_timeout 2s): closed after ~2s" "^closed after [23]\.[0-9]s$" "$out"
big=$(head -c 65536 /dev/zero | tr '\0' a)
expect_eq "64 KB header: 431" 431 "$(gk_curl a.test / "${EDGE[@]}" -H "X-Big: $big")"

# --- Prometheus metrics count the refusals by host and reason
m=$(curl -sS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" || true)
expect_match "metrics: a.test verify refusals counted" 'og_gk_refusals_total\{host="a.test",reason="verify"\} [1-9]' "$m"
expect_match "metrics: z.test pin refusal counted" 'og_gk_refusals_total\{host="z.test",reason="pin"\} 1' "$m"
expect_match "metrics: e.test edge-ip refusal counted" 'og_gk_refusals_total\{host="e.test",reason="edge_ip"\} 1' "$m"
expect_match "metrics: SNI refusals counted" 'og_gk_refused_sni_total [3-9]' "$m"
expect_match "metrics: the verdict cache answered repeat edge certificates for a.test" 'og_gk_verdict_cache_hits_total\{host="a.test"\} [1-9]' "$m"

# --- --check-config names the problem
sed "s#$P/srv-b.key#$P/srv-a.key#" "$T/gk.toml" >"$T/bad.toml"
out=$("$GK_BIN" --check-config --config "$T/bad.toml" 2>&1 || true)
expect_match "--check-config: key/cert mismatch names host and files" "b.test: key .*srv-a.key does not match cert .*srv-b.pem" "$out"
gk_finish
