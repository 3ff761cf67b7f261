#!/usr/bin/env bash
# The TLS side's limits against real clients, in a network namespace of the test's own
# (gk_enter_netns: addresses on its lo, so curl --interface and bind() pick edge or attacker
# source addresses; the origin is 192.0.2.1 / 2001:db8:1::1, the edge snapshot lists
# 198.51.100.0/24 and 2001:db8:cf::/48, attackers are 203.0.113.0/24 and 2001:db8:bad::/48):
#  - a cached chain verdict ends at the CRL's nextUpdate (issue 15 finding 6);
#  - the client-chain depth limit holds in both host orders (finding 11);
#  - a 200-certificate junk chain is refused for its size, before any parsing (finding 13);
#  - floods before and during the handshake from non-edge sources do not keep an edge client
#    out (finding 12): refused at accept when every host requires an edge source, capped per
#    source (IPv4 address, IPv6 /64) otherwise; silent connections closed after
#    client_hello_timeout, slow handshakes after handshake_timeout.
. "$(dirname "$0")/lib_gk.sh"
gk_enter_netns 192.0.2.1/32 198.51.100.10/32 203.0.113.10/32 203.0.113.11/32 \
  2001:db8:1::1/128 2001:db8:cf::10/128 2001:db8:bad::10/128 2001:db8:bad::11/128 2001:db8:bad:1::10/128
gk_init
gk_pki
gk_upstream http
METRICS_PORT=$(gk_free_port)
EDGE=(--cert "$P/edge.pem" --key "$P/edge.key")
echo '{"version":1,"generated_at":"2026-01-01T00:00:00Z","ipv4":["198.51.100.0/24"],"ipv6":["2001:db8:cf::/48"]}' >"$T/edge.json"
err() { tr -d '\n' <"$T/curl.err"; }
metrics() { curl -sS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" || true; }
host() {  # names cert extra...
  printf '[[host]]\nnames = %s\ncert = "%s.pem"\nkey = "%s.key"\nupstream = "127.0.0.1:%s"\n' "$1" "$P/$2" "$P/$2" "$UP_PORT"
  shift 2
  printf '%s\n' "$@"
  echo
}
gatekeeper() {  # extra [gatekeeper] lines, then [[host]] tables on stdin
  GK_PORT=$(gk_free_port)
  {
    printf '[gatekeeper]\nlisten = ["127.0.0.1:%s", "192.0.2.1:%s", "[2001:db8:1::1]:%s"]\nworkers = 2\n' \
      "$GK_PORT" "$GK_PORT" "$GK_PORT"
    printf 'edge_ranges_file = "%s"\nmetrics_listen = "127.0.0.1:%s"\n' "$T/edge.json" "$METRICS_PORT"
    printf '%s\n' "$@"
    echo
    cat
  } >"$T/gk.toml"
  gk_start
}

# --- finding 6: a cached verdict ends at the CRL's nextUpdate --------------------------
# A CRL due in 10 s: the edge certificate passes (the second time from the verdict cache);
# once nextUpdate has passed, fresh verification refuses every chain ("CRL has expired")
# and so must the cache.
openssl ca -batch -config "$P/global/ca.cnf" -cert "$P/global/ca.pem" -keyfile "$P/global/ca.key" \
  -gencrl -crlsec 10 -out "$P/short.crl" 2>/dev/null
NEXT=$(date -d "$(openssl crl -in "$P/short.crl" -noout -nextupdate | cut -d= -f2)" +%s)
gatekeeper <<<"$(host '["h.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"" "crl = \"$P/short.crl\"")"
expect_eq "CRL due in 10 s: edge certificate, 200" 200 "$(gk_curl h.test / "${EDGE[@]}")"
expect_eq "CRL due in 10 s: again, 200" 200 "$(gk_curl h.test / "${EDGE[@]}")"
m=$(metrics)
if (($(date +%s) < NEXT)); then pass "both requests before the CRL's nextUpdate"; else failcase "setup took past the CRL's nextUpdate"; fi
expect_match "the second one from the verdict cache" 'og_gk_verdict_cache_hits_total\{host="h.test"\} 1'$'\n' "$m"
expect_match "metrics: the CRL's nextUpdate" "og_gk_crl_next_update_seconds\\{host=\"h.test\",crl=\"$P/short.crl\"\\} $NEXT" "$m"
while (($(date +%s) < NEXT)); do sleep 0.2; done
code=$(gk_curl h.test / "${EDGE[@]}")
expect_match "after nextUpdate: refused (CRL has expired), not served from the cache" "000 .*certificate expired" "$code $(err)"
expect_match "the refusal is logged with its reason" 'gk_client_cert_refused .*host=h.test .*reason="?CRL has expired' "$(cat "$T/gk.log")"
gk_stop

# --- finding 11: the chain depth limit does not depend on the order of hosts --------------
mk_chain() {  # n name: $P/name.pem = leaf + n intermediates (leaf's issuer first) under the global CA
  local n=$1 name=$2 icert="$P/global/ca.pem" ikey="$P/global/ca.key" i
  : >"$T/$name-chain.pem"
  for i in $(seq 1 "$n"); do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$name-$i.key" \
      -out "$T/$name-$i.csr" -subj "/CN=$name intermediate $i" 2>/dev/null
    openssl x509 -req -in "$T/$name-$i.csr" -CA "$icert" -CAkey "$ikey" -set_serial "$RANDOM$i" -days 30 \
      -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n') \
      -out "$T/$name-$i.pem" 2>/dev/null
    cat "$T/$name-$i.pem" "$T/$name-chain.pem" >"$T/$name-chain.tmp" && mv "$T/$name-chain.tmp" "$T/$name-chain.pem"
    icert="$T/$name-$i.pem" ikey="$T/$name-$i.key"
  done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$name.key" -out "$T/$name.csr" \
    -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$T/$name.csr" -CA "$icert" -CAkey "$ikey" -set_serial "$RANDOM" -days 30 \
    -extfile <(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n') -out "$T/$name-leaf.pem" 2>/dev/null
  cat "$T/$name-leaf.pem" "$T/$name-chain.pem" >"$P/$name.pem"
}
mk_chain 8 deep8
mk_chain 5 deep5
for order in off-first required-first; do
  if [[ $order == off-first ]]; then
    gatekeeper <<<"$(host '["n.test"]' srv-misc 'mtls = "off"'; host '["h.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"")"
  else
    gatekeeper <<<"$(host '["h.test"]' srv-misc "client_ca = \"$P/global/ca.pem\""; host '["n.test"]' srv-misc 'mtls = "off"')"
  fi
  code=$(gk_curl h.test / --cert "$P/deep8.pem" --key "$P/deep8.key")
  expect_match "$order: 8 intermediates refused" "^000 " "$code $(err)"
  expect_match "$order: logged as chain too long" 'gk_client_cert_refused .*host=h.test .*reason="certificate chain too long"' "$(cat "$T/gk.log")"
  expect_eq "$order: 5 intermediates (the limit) served" 200 "$(gk_curl h.test / --cert "$P/deep5.pem" --key "$P/deep5.key")"
  expect_match "$order: the chain went through the gatekeeper" '"X-Client-Verify": "SUCCESS"' "$(cat "$T/body")"
  gk_stop
done

# --- finding 13: the client Certificate message is capped (max_client_chain_bytes) ---------
# 200 self-signed certificates (~75 KB; 10 distinct ones, each sent 20 times: the size is what
# counts), after a junk leaf or after the edge's own certificate.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/junk.key" 2>/dev/null
for i in $(seq 1 10); do openssl req -x509 -key "$P/junk.key" -subj "/CN=junk $i" -days 1 2>/dev/null; done >"$T/junk10.pem"
for i in $(seq 1 20); do cat "$T/junk10.pem"; done >"$P/junk200.pem"
{ cat "$P/edge.pem"; sed -n '/BEGIN/,$p' "$P/junk200.pem" | awk 'f; /END CERTIFICATE/ {f=1}'; } >"$P/edge+junk199.pem"
{ cat "$P/edge.pem"; sed -n '1,/END CERTIFICATE/p' "$T/junk10.pem"; } >"$P/edge+junk1.pem"
expect_eq "junk chains: 200 certificates each" "200 200" \
  "$(grep -c BEGIN "$P/junk200.pem") $(grep -c BEGIN "$P/edge+junk199.pem")"
gatekeeper <<<"$(host '["n.test"]' srv-misc 'mtls = "off"'; host '["h.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"")"
for tls in --tlsv1.2 --tlsv1.3; do
  max=(--tls-max "${tls#--tlsv}")
  code=$(gk_curl h.test / "$tls" "${max[@]}" --cert "$P/junk200.pem" --key "$P/junk.key")
  expect_match "200 junk certificates ($tls): refused" "^000 " "$code $(err)"
  code=$(gk_curl h.test / "$tls" "${max[@]}" --cert "$P/edge+junk199.pem" --key "$P/edge.key")
  expect_match "the edge certificate + 199 junk ones ($tls): refused" "^000 " "$code $(err)"
  expect_eq "the edge certificate + 1 junk one ($tls): served" 200 \
    "$(gk_curl h.test / "$tls" "${max[@]}" --cert "$P/edge+junk1.pem" --key "$P/edge.key")"
done
n=$(grep -c 'gk_handshake_refused reason=client_chain_too_large .*host=h.test' "$T/gk.log" || true)
expect_eq "each refused for its size, before a certificate was parsed (log reason)" 4 "$n"
expect_match "counted as verify refusals" 'og_gk_refusals_total\{host="h.test",reason="verify"\} 4'$'\n' "$(metrics)"
gk_stop

# --- finding 12: floods before (and during) the handshake ---------------------------------
curl_from() {  # source-address host [curl args...]: the HTTP code, 000 when refused
  local src=$1 h=$2 dst=192.0.2.1
  shift 2
  [[ $src == *:* ]] && dst=[2001:db8:1::1]
  curl -sS -o "$T/body" -w '%{http_code}' --max-time 10 --cacert "$P/srvca/ca.pem" --interface "$src" \
    --resolve "$h:$GK_PORT:$dst" "$@" "https://$h:$GK_PORT/" 2>"$T/curl.err" || true
}
flood() {  # log dst args...: starts flood.py in the background, returns once its connections are open
  local log=$1 dst=$2
  shift 2
  gk_bg "$log" python3 "$GK_HERE/flood.py" --dst "$dst" --port "$GK_PORT" "$@"
  FLOOD_PID=$LAST_PID
  for _ in $(seq 1 100); do grep -q '^opened' "$log" 2>/dev/null && return 0; sleep 0.1; done
  failcase "flood.py did not open its connections: $(cat "$log")"
}
flood_wait() { wait "$FLOOD_PID" 2>/dev/null || true; }  # not in $(...): a subshell cannot wait
flood_result() {  # log source: flood.py's line for that source (after flood_wait)
  grep "^src=$2 " "$1" | sed "s/^src=$2 //" || echo "(no result for $2: $(tr '\n' ' ' <"$1"))"
}
EDGE4=198.51.100.10 EDGE6=2001:db8:cf::10 BAD4=203.0.113.10

# Every host requires an edge source: 50 bare connections from an attacker are reset at
# accept (no TLS work, no slot of max_connections = 50 held) and the edge is served meanwhile.
gatekeeper 'max_connections = 50' <<<"$(host '["e.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"" 'require_edge_ip = true'
  host '["n.test"]' srv-misc 'mtls = "off"' 'require_edge_ip = true')"
flood "$T/flood1.log" 192.0.2.1 --src "$BAD4=50" --watch 3
expect_eq "every host requires edge: edge client served during the flood" 200 "$(curl_from $EDGE4 e.test "${EDGE[@]}")"
expect_eq "… over IPv6 too" 200 "$(curl_from $EDGE6 n.test)"
flood_wait
expect_match "50 bare connections from $BAD4: all reset at accept" "^opened=50 at_once=50 later=0 open=0" \
  "$(flood_result "$T/flood1.log" $BAD4)"
expect_match "an IPv6 attacker too" "000 " "$(curl_from 2001:db8:bad::10 n.test) $(err)"
# 50 + the IPv6 attempt + gk_start's port probe (from 127.0.0.1, not an edge address either)
expect_match "metrics: refused at accept, not edge" 'og_gk_refused_not_edge_total 52'$'\n' "$(metrics)"
gk_stop

# Mixed hosts (n.test serves anyone): a cap per source instead, 10 here. 50 bare connections
# from one address hold 10 of max_connections = 50; the rest are reset at accept. The 10 are
# closed after client_hello_timeout (3 s), well before handshake_timeout (6 s).
gatekeeper 'max_connections = 50' 'max_connections_per_source = 10' 'client_hello_timeout = "3s"' \
  'handshake_timeout = "6s"' <<<"$(host '["e.test"]' srv-misc "client_ca = \"$P/global/ca.pem\"" 'require_edge_ip = true'
  host '["n.test"]' srv-misc 'mtls = "off"')"
flood "$T/flood2.log" 192.0.2.1 --src "$BAD4=50" --watch 6
expect_eq "per-source cap: edge client served during the flood" 200 "$(curl_from $EDGE4 e.test "${EDGE[@]}")"
expect_eq "… and a client of the open host from another address" 200 "$(curl_from 203.0.113.11 n.test 2>/dev/null)"
flood_wait
r=$(flood_result "$T/flood2.log" $BAD4)
expect_match "50 bare connections from one address: 10 held, 40 reset at accept" "^opened=50 at_once=40 later=10 open=0" "$r"
expect_match "the 10 closed after client_hello_timeout (3 s), not handshake_timeout (6 s)" "later_min=[23]\.[0-9] later_max=[34]\.[0-9]" "$r"
# IPv6 sources count per /64: ::10 and ::11 share one, 2001:db8:bad:1::/64 is another.
flood "$T/flood3.log" '2001:db8:1::1' --src 2001:db8:bad::10=6 --src 2001:db8:bad::11=6 --src 2001:db8:bad:1::10=3 --watch 5
flood_wait
expect_match "IPv6: the first 6 of a /64 held" "^opened=6 at_once=0 later=6" "$(flood_result "$T/flood3.log" 2001:db8:bad::10)"
expect_match "IPv6: 4 more from the same /64 held, 2 reset" "^opened=6 at_once=2 later=4" "$(flood_result "$T/flood3.log" 2001:db8:bad::11)"
expect_match "IPv6: another /64 is another source" "^opened=3 at_once=0 later=3" "$(flood_result "$T/flood3.log" 2001:db8:bad:1::10)"
# During the handshake: a ClientHello then silence holds a slot until handshake_timeout; to
# a require_edge_ip host it is refused in the ClientHello.
flood "$T/flood4.log" 192.0.2.1 --src "$BAD4=5" --mode hello --sni n.test --watch 9
flood_wait
r=$(flood_result "$T/flood4.log" $BAD4)
expect_match "ClientHello then silence: closed after handshake_timeout (6 s)" "^opened=5 at_once=0 later=5 open=0 later_min=[56]\.[0-9] later_max=[67]\.[0-9]" "$r"
# A ClientHello dribbled one byte at a time, or one announced at 128 KiB (which OpenSSL
# allocates on reading its header) and never sent: both within client_hello_timeout.
flood "$T/flood6.log" 192.0.2.1 --src "$BAD4=3" --mode slowhello --sni n.test --watch 6
flood_wait
expect_match "ClientHello dribbled byte by byte: closed after client_hello_timeout (3 s)" \
  "^opened=3 at_once=0 later=3 open=0 later_min=[23]\.[0-9] later_max=[34]\.[0-9]" "$(flood_result "$T/flood6.log" $BAD4)"
flood "$T/flood7.log" 192.0.2.1 --src "$BAD4=3" --mode bigheader --watch 6
flood_wait
expect_match "a 128 KiB ClientHello announced, never sent: closed after client_hello_timeout (3 s)" \
  "^opened=3 at_once=0 later=3 open=0 later_min=[23]\.[0-9] later_max=[34]\.[0-9]" "$(flood_result "$T/flood7.log" $BAD4)"
flood "$T/flood5.log" 192.0.2.1 --src "$BAD4=5" --mode hello --sni e.test --watch 3
flood_wait
expect_match "ClientHello for a require_edge_ip host from a non-edge source: refused at once" "^opened=5 at_once=5" \
  "$(flood_result "$T/flood5.log" $BAD4)"
m=$(metrics)
expect_match "metrics: per-source refusals" 'og_gk_refused_source_limit_total 42'$'\n' "$m"
expect_match "metrics: nothing refused as not edge at accept (n.test serves anyone)" 'og_gk_refused_not_edge_total 0'$'\n' "$m"
gk_stop

gk_finish
