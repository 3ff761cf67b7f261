#!/usr/bin/env bash
# A policy change reaches kept-alive connections (issue 15, finding 8): after a reload the
# next request on an established connection is checked against the new generation (client
# certificate re-verified against the new CA/CRL/pins, mtls mode, require_edge_ip, the SNI
# still served in http mode) and answered 421 when the connection no longer qualifies;
# max_connection_lifetime ends idle connections and splices.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
gk_stub
STUB=$UP_PORT
GK_PORT=$(gk_free_port)
ZONE_PIN=$(spki_pin "$P/zone/ca.pem")
echo '{"version":1,"generated_at":"2026-01-01T00:00:00Z","ipv4":["127.0.0.2/32"],"ipv6":[]}' >"$T/edge.json"
# A CRL of the global CA that revokes the edge certificate too.
openssl ca -batch -config "$P/global/ca.cnf" -cert "$P/global/ca.pem" -keyfile "$P/global/ca.key" -revoke "$P/edge.pem" 2>/dev/null
openssl ca -batch -config "$P/global/ca.cnf" -cert "$P/global/ca.pem" -keyfile "$P/global/ca.key" -gencrl -out "$T/edge-revoked.crl" 2>/dev/null

host() {  # names extra...
  printf '[[host]]\nnames = %s\ncert = "%s"\nkey = "%s"\nupstream = "127.0.0.1:%s"\n' "$1" "$P/srv-misc.pem" "$P/srv-misc.key" "$STUB"
  shift
  printf '%s\n' "$@"
  echo
}
write_config() {  # generation (1: before, 2: after the policy change, 3: with a short lifetime)
  {
    printf '[gatekeeper]\nlisten = ["127.0.0.1:%s"]\nworkers = 2\nedge_ranges_file = "%s"\ncontrol_socket = "%s"\n' "$GK_PORT" "$T/edge.json" "$T/gk.sock"
    [[ $1 == 3 ]] && echo 'max_connection_lifetime = "2s"'
    echo
    if [[ $1 == 1 ]]; then
      host '["n.test"]' 'mtls = "off"'
      host '["e.test"]' "client_ca = \"$P/global/ca.pem\""
      host '["z.test"]' "client_ca = \"$P/global+zone.pem\""
      host '["k.test"]' "client_ca = \"$P/global/ca.pem\""
      host '["h.test"]' "client_ca = \"$P/global/ca.pem\""
      host '["t.test"]' "client_ca = \"$P/global/ca.pem\""
    else
      host '["n.test"]' "client_ca = \"$P/global/ca.pem\"" 'mtls = "required"'
      host '["e.test"]' "client_ca = \"$P/global/ca.pem\"" "crl = \"$T/edge-revoked.crl\""
      host '["z.test"]' "client_ca = \"$P/global+zone.pem\"" "pin_spki_sha256 = [\"$ZONE_PIN\"]"
      host '["k.test"]' "client_ca = \"$P/global/ca.pem\"" 'require_edge_ip = true'
      host '["t.test"]' "client_ca = \"$P/global/ca.pem\"" 'mode = "tcp"'
      host '["p.test"]' "client_ca = \"$P/global/ca.pem\""
    fi
    # o.test never changes: its connections must survive every reload.
    host '["o.test"]' "client_ca = \"$P/global/ca.pem\""
    # w.test: only from edge addresses, judged against the snapshot in force.
    host '["w.test"]' 'mtls = "off"' 'require_edge_ip = true'
  } >"$T/gk.toml"
}
write_config 1
gk_start
EDGE=(--cert "$P/edge.pem" --key "$P/edge.key")
req() { printf 'GET %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' "$1" "$2"; }
reloads() { grep -c 'event=gk_reloaded' "$T/gk.log" || true; }
# A kept-alive connection: one request, then (after the reload) another on the same connection.
keepalive() {  # name sni [cert args]
  local name=$1 sni=$2; shift 2
  gk_hc "$sni" "$@" --send "$(req /one "$sni")" --read --touch "$T/$name.ready" --wait-file "$T/go" \
    --send "$(req /two "$sni")" --read --end >"$T/$name.out" &
  GK_PIDS+=($!)
}
keepalive off-to-required n.test
keepalive revoked e.test "${EDGE[@]}"
keepalive pinned z.test "${EDGE[@]}"
keepalive edge-ip k.test "${EDGE[@]}"
keepalive removed h.test "${EDGE[@]}"
keepalive to-tcp t.test "${EDGE[@]}"
keepalive unchanged o.test "${EDGE[@]}"
for n in off-to-required revoked pinned edge-ip removed to-tcp unchanged; do
  for _ in $(seq 1 100); do [[ -e $T/$n.ready ]] && break; sleep 0.1; done
done
before=$(reloads)
write_config 2
kill -HUP "$GK_PID"
for _ in $(seq 1 100); do (($(reloads) > before)) && break; sleep 0.1; done
expect_eq "the reload was applied" "$((before + 1))" "$(reloads)"
touch "$T/go"
wait_out() { for _ in $(seq 1 100); do grep -q '^end=' "$T/$1.out" 2>/dev/null && break; sleep 0.1; done; lines=$(tr '\n' ' ' <"$T/$1.out"); }
for n in off-to-required revoked pinned edge-ip removed to-tcp; do
  wait_out "$n"
  expect_match "$n: first request 200, the next after the reload 421, then the connection ends" \
    '^status=200 .*status=421 .*end=(close_notify|eof)' "$lines"
done
wait_out unchanged
expect_match "unchanged host: both requests 200 on the same connection" '^status=200 .*"target": "/one".*status=200 .*"target": "/two"' "$lines"
expect_match "the gatekeeper logs why a connection was cut" 'event=gk_policy_changed.*reason=' "$(cat "$T/gk.log")"

# --- a new edge snapshot reaches kept-alive connections too (no reload)
gk_hc w.test --source 127.0.0.2 --send "$(req /one w.test)" --read --touch "$T/edge.ready" --wait-file "$T/edge.go" \
  --send "$(req /two w.test)" --read --end >"$T/edge.out" &
GK_PIDS+=($!)
for _ in $(seq 1 100); do [[ -e $T/edge.ready ]] && break; sleep 0.1; done
loaded=$(grep -c 'event=gk_edge_ranges_loaded' "$T/gk.log" || true)
echo '{"version":1,"generated_at":"2026-01-02T00:00:00Z","ipv4":["127.0.0.3/32"],"ipv6":[]}' >"$T/edge.json.new"
mv "$T/edge.json.new" "$T/edge.json"
for _ in $(seq 1 50); do (($(grep -c 'event=gk_edge_ranges_loaded' "$T/gk.log" || true) > loaded)) && break; sleep 0.1; done
touch "$T/edge.go"
wait_out edge
expect_match "source no longer in the edge snapshot: the next request on its connection 421" '^status=200 .*status=421 ' "$lines"

# --- max_connection_lifetime: idle keep-alive connections and splices end
before=$(reloads)
write_config 3
kill -HUP "$GK_PID"
for _ in $(seq 1 100); do (($(reloads) > before)) && break; sleep 0.1; done
expect_eq "reload with max_connection_lifetime = 2s" "$((before + 1))" "$(reloads)"
out=$(gk_hc o.test "${EDGE[@]}" --send "$(req /one o.test)" --read --end)
expect_match "idle keep-alive connection closed at its lifetime" '^status=200 .*end=close_notify' "$(tr '\n' ' ' <<<"$out")"
WS='Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
out=$(gk_hc o.test "${EDGE[@]}" --send "GET /ws HTTP/1.1\\r\\nHost: o.test\\r\\n$WS\\r\\n" --read --send ping --end --end)
expect_match "WebSocket splice ended at the connection's lifetime" "^status=101 .*end=data:b'ping' end=close_notify" "$(tr '\n' ' ' <<<"$out")"
gk_finish
