#!/usr/bin/env bash
# Good paths with real peers: nginx configured as the Cloudflare edge (proxy_ssl_certificate,
# proxy_ssl_server_name on) in front of the gatekeeper; tcp mode with PROXY v2 TLVs parsed by
# a consumer; PROXY v2 into HAProxy (accept-proxy); chunked and 100-continue bodies; hot
# reload during 200 open keep-alive connections (none dropped, new handshakes get the new
# cert) and a bad config refused while the old one keeps serving.
. "$(dirname "$0")/lib_gk.sh"
gk_init
gk_pki
gk_upstream http
HTTP_UP=$UP_PORT
gk_upstream pp2echo
PP2_UP=$UP_PORT
gk_upstream https "$P/srv-misc.pem" "$P/srv-misc.key"
TLS_UP=$UP_PORT
HAP_PORT=$(gk_free_port)
GK_PORT=$(gk_free_port)
EDGE_PORT=$(gk_free_port)
echo '{"version":1,"generated_at":"2026-01-01T00:00:00Z","ipv4":["127.0.0.2/32"],"ipv6":[]}' >"$T/edge.json"

write_config() {  # cert-for-a.test
  cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT"]
workers = 2
edge_ranges_file = "$T/edge.json"

[[host]]
names = ["a.test"]
cert = "$P/$1.pem"
key = "$P/$1.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$HTTP_UP"

[[host]]
names = ["e.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
require_edge_ip = true
upstream = "127.0.0.1:$HTTP_UP"

[[host]]
names = ["t.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
mode = "tcp"
proxy_protocol = "v2"
upstream = "127.0.0.1:$PP2_UP"

[[host]]
names = ["w.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$TLS_UP"
upstream_tls = true
upstream_ca = "$P/srvca/ca.pem"
upstream_server_name = "z.test"

[[host]]
names = ["n.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
upstream = "127.0.0.1:$TLS_UP"
upstream_tls = true
upstream_ca = "$P/srvca/ca.pem"
upstream_server_name = "wrong.test"

[[host]]
names = ["h.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
client_ca = "$P/global/ca.pem"
proxy_protocol = "v2"
upstream = "127.0.0.1:$HAP_PORT"
TOML
}
write_config srv-a

cat >"$T/haproxy.cfg" <<CFG
global
  log stderr format raw local0 err
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$HAP_PORT accept-proxy
  http-request return status 200 content-type text/plain lf-string "src=%[src] authority=%[fc_pp_authority]\n"
CFG
gk_bg "$T/haproxy.log" haproxy -f "$T/haproxy.cfg" -db
gk_wait_port "$HAP_PORT"

mkdir -p "$T/nginx"
cat >"$T/nginx.conf" <<CONF
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fcgi; uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  # One pool per SNI, as the edge does: a connection made for a.test is never reused for
  # e.test (the gatekeeper would answer 421).
  upstream gk_a.test { server 127.0.0.1:$GK_PORT; keepalive 8; }
  upstream gk_e.test { server 127.0.0.1:$GK_PORT; keepalive 8; }
  server {
    listen 127.0.0.1:$EDGE_PORT;
    location / {
      proxy_pass https://gk_\$http_host;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header CF-Connecting-IP 192.0.2.77;
      proxy_bind 127.0.0.2;
      proxy_ssl_server_name on;
      proxy_ssl_name \$http_host;
      proxy_ssl_certificate $P/edge.pem;
      proxy_ssl_certificate_key $P/edge.key;
      proxy_ssl_trusted_certificate $P/srvca/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_session_reuse on;
    }
  }
}
CONF
gk_bg "$T/nginx/stderr.log" nginx -c "$T/nginx.conf" -p "$T/nginx"
gk_wait_port "$EDGE_PORT"
gk_start

# --- nginx as the Cloudflare edge
code=$(curl -sS -o "$T/body" -w '%{http_code}' --max-time 10 -H 'Host: a.test' "http://127.0.0.1:$EDGE_PORT/via-edge")
expect_eq "nginx edge (proxy_ssl_certificate) -> gatekeeper -> upstream: 200" 200 "$code"
body=$(cat "$T/body")
expect_match "edge identity reaches upstream" '"X-Client-Verify": "SUCCESS".*"X-Client-Subject": "CN=origin-pull.cloudflare.net"' "$body"
expect_match "CF-Connecting-IP set by the verified edge is kept" '"C[Ff]-C[Oo][Nn][Nn][Ee][Cc][Tt][Ii][Nn][Gg]-I[Pp]": "192.0.2.77"' "$body"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host: e.test' "http://127.0.0.1:$EDGE_PORT/")
expect_eq "nginx edge from an edge-range source to require_edge_ip host: 200" 200 "$code"
for i in 1 2 3; do curl -sS -o "$T/body" --max-time 10 -H 'Host: a.test' "http://127.0.0.1:$EDGE_PORT/ka$i"; done
expect_match "nginx keeps its upstream connection to the gatekeeper alive" '"conn": [2-9]' "$(cat "$T/body")"

# --- bodies: chunked and Expect: 100-continue (curl direct, edge cert)
EDGE=(--cert "$P/edge.pem" --key "$P/edge.key")
head -c 300000 /dev/urandom >"$T/blob"
gk_curl a.test /up "${EDGE[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$T/blob" >/dev/null
expect_match "chunked request body relayed" '"body_len": 300000' "$(cat "$T/body")"
code=$(gk_curl a.test /up "${EDGE[@]}" -H 'Expect: 100-continue' --data-binary @"$T/blob")
expect_match "Expect: 100-continue body relayed" '200 .*"body_len": 300000' "$code $(cat "$T/body")"
code=$(gk_curl a.test /h "${EDGE[@]}" -I)
expect_eq "HEAD: 200" 200 "$code"

# --- tcp mode, PROXY v2 TLVs parsed by a consumer
line=$( (printf 'ping\n'; sleep 1) | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$GK_PORT" -servername t.test \
  -cert "$P/edge.pem" -key "$P/edge.key" 2>/dev/null | head -2 | tr '\n' ' ' || true)
expect_match "tcp mode: PROXY v2 authority TLV = SNI" '"authority": "t.test"' "$line"
expect_match "tcp mode: PP2_TYPE_SSL client=7 verify=0, CN sub-TLV" '"ssl": \{"client": 7, "verify": 0, "version": "TLSv1.3", "cn": "origin-pull.cloudflare.net"' "$line"
expect_match "tcp mode: cert SHA-256 TLV" "\"cert_sha256\": \"$(openssl x509 -in "$P/edge.pem" -outform der | sha256sum | cut -d' ' -f1)\"" "$line"
expect_match "tcp mode: source address and bytes spliced" '"src": "127.0.0.1".* ping $' "$line"

# --- PROXY v2 into HAProxy (accept-proxy)
code=$(gk_curl h.test / "${EDGE[@]}")
expect_match "HAProxy accept-proxy parses our v2 header (src, authority)" "200 src=127.0.0.1 authority=h.test" "$code $(cat "$T/body")"

# --- TLS to the upstream, verified
code=$(gk_curl w.test /tls-up "${EDGE[@]}")
expect_match "TLS upstream (verified name z.test): 200" '200 .*"path": "/tls-up"' "$code $(cat "$T/body")"
expect_eq "TLS upstream whose cert does not match upstream_server_name: 502" 502 "$(gk_curl n.test / "${EDGE[@]}")"

# --- reload during 200 open keep-alive connections
old_fp=$(openssl x509 -in "$P/srv-a.pem" -noout -fingerprint -sha256)
new_fp=$(openssl x509 -in "$P/srv-a2.pem" -noout -fingerprint -sha256)
gk_bg "$T/ka.log" python3 "$GK_HERE/keepalive_clients.py" "$GK_PORT" a.test 200 "$P/edge.pem" "$P/edge.key" "$P/srvca/ca.pem" "$T/trigger"
KA_PID=$LAST_PID
for _ in $(seq 1 200); do grep -q phase1 "$T/ka.log" 2>/dev/null && break; sleep 0.1; done
expect_eq "200 keep-alive connections open" "phase1 ok=200" "$(grep phase1 "$T/ka.log" || true)"
write_config srv-a2
kill -HUP "$GK_PID"
for _ in $(seq 1 50); do grep -q gk_reloaded "$T/gk.log" && break; sleep 0.1; done
fp=$(openssl s_client -connect "127.0.0.1:$GK_PORT" -servername a.test -cert "$P/edge.pem" -key "$P/edge.key" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)
expect_eq "new handshake after SIGHUP uses the new certificate" "$new_fp" "$fp"
[[ $old_fp != "$new_fp" ]] || failcase "test PKI: srv-a and srv-a2 identical"
touch "$T/trigger"
wait "$KA_PID" || true
expect_eq "no keep-alive connection dropped by the reload" "phase2 ok=200" "$(grep phase2 "$T/ka.log" || true)"
echo 'this is = not [valid' >>"$T/gk.toml"
kill -HUP "$GK_PID"
for _ in $(seq 1 50); do grep -q gk_reload_refused "$T/gk.log" && break; sleep 0.1; done
expect_match "bad config refused on SIGHUP" "gk_reload_refused" "$(cat "$T/gk.log")"
expect_eq "old config keeps serving" 200 "$(gk_curl a.test / "${EDGE[@]}")"
gk_finish
