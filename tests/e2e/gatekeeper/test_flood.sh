#!/usr/bin/env bash
# Established, verified clients keep being served while the gatekeeper is flooded up to
# max_connections (issue 17, "every socket abused"), in a network namespace of the test's own.
#
# 8 keep-alive mTLS clients (edge address, edge client certificate) are connected first; then
# for FLOOD_S seconds a sustained flood (flood_sustained.py: every connection the server closes
# is opened again) holds, from edge addresses (not capped per source, as Cloudflare's are not):
# half-open TCP connections that send nothing, TLS handshakes stopped after the ClientHello,
# and idle mTLS connections that never send a request -- 1.5 x max_connections together, so
# the gatekeeper stays full (resets at accept counted) -- plus bare connections from an
# attacker address, capped per source. Meanwhile the 8 clients request back to back; their
# success rate must be >= 99 % (printed with p50/p99 latency, which is reported, not
# asserted), each flood kind must have been held open until the server's timeouts closed it,
# and once the flood ends the gatekeeper's open file descriptors must come back to their
# count before it (polled). New connections while the gatekeeper is full are reset at accept
# by design (max_connections): "kept being served" is about the established ones.
. "$(dirname "$0")/lib_gk.sh"
FLOOD_SRCS=(198.51.100.20 198.51.100.21 198.51.100.22 198.51.100.23 198.51.100.24 198.51.100.25)
gk_enter_netns 192.0.2.1/32 198.51.100.10/32 "${FLOOD_SRCS[@]/%//32}" 203.0.113.10/32
gk_init
gk_pki
gk_upstream http
MAX_CONN=${GK_FLOOD_MAX_CONN:-300}
FLOOD_S=${GK_FLOOD_SECONDS:-12}
CLIENTS=8
GK_PORT=$(gk_free_port)
METRICS_PORT=$(gk_free_port)
echo '{"version":1,"generated_at":"2026-01-01T00:00:00Z","ipv4":["198.51.100.0/24"],"ipv6":["2001:db8:cf::/48"]}' >"$T/edge.json"
cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT", "192.0.2.1:$GK_PORT"]
workers = 2
edge_ranges_file = "$T/edge.json"
metrics_listen = "127.0.0.1:$METRICS_PORT"
max_connections = $MAX_CONN
max_connections_per_source = 16
client_hello_timeout = "2s"
handshake_timeout = "3s"
idle_timeout = "4s"

[[host]]
names = ["h.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
upstream = "127.0.0.1:$UP_PORT"
client_ca = "$P/global/ca.pem"
require_edge_ip = true

[[host]]
names = ["n.test"]
cert = "$P/srv-misc.pem"
key = "$P/srv-misc.key"
upstream = "127.0.0.1:$UP_PORT"
mtls = "off"
TOML
gk_start
gk_wait_port "$GK_PORT" 192.0.2.1
metrics() { curl -sS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" || true; }
metric() { metrics | awk -v m="$1" '$1 == m {print $2}'; }
fds() { find "/proc/$GK_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# Descriptors besides the upstream pool's idle connections (kept on purpose, up to
# upstream_keepalive per upstream; their count is the og_gk_upstream_idle gauge). The gauge is
# read on both sides of the count and must agree, so a pooled connection closing in between
# cannot skew it.
own_fds() {
  local a b n
  for _ in 1 2 3 4 5; do
    a=$(metric og_gk_upstream_idle); n=$(fds); b=$(metric og_gk_upstream_idle)
    [[ -n $a && $a == "$b" ]] && { echo $((n - a)); return; }
  done
  echo "unstable($n)"
}
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$P/srvca/ca.pem" --interface 198.51.100.10 \
  --resolve "h.test:$GK_PORT:192.0.2.1" --cert "$P/edge.pem" --key "$P/edge.key" "https://h.test:$GK_PORT/" || true)
expect_eq "warm-up: an edge client with the edge certificate is served" 200 "$code"
# The baseline once that connection is gone: listeners, control and metrics sockets, logs.
for _ in $(seq 1 50); do [[ $(metric og_gk_connections_active 2>/dev/null) == 0 ]] && break; sleep 0.1; done
BASE_FDS=$(own_fds)

gk_bg "$T/steady.log" python3 "$GK_HERE/steady_clients.py" "$GK_PORT" 192.0.2.1 h.test $CLIENTS "$P/edge.pem" \
  "$P/edge.key" "$P/srvca/ca.pem" 198.51.100.10 "$T/go" $((FLOOD_S - 2))
STEADY_PID=$LAST_PID
for _ in $(seq 1 100); do grep -q '^ready' "$T/steady.log" 2>/dev/null && break; sleep 0.1; done
expect_eq "$CLIENTS verified keep-alive clients connected" ready "$(head -1 "$T/steady.log")"

# Per edge source, a third of the flood of each kind; together 1.5 x max_connections.
per=$((MAX_CONN / 2 / ${#FLOOD_SRCS[@]} + 1))
srcs=()
for s in "${FLOOD_SRCS[@]}"; do srcs+=(--src "$s=bare:$per" --src "$s=hello:$per" --src "$s=idle:$per"); done
srcs+=(--src 203.0.113.10=bare:40)
overload0=$(metric og_gk_refused_overload_total)
source0=$(metric og_gk_refused_source_limit_total)
gk_bg "$T/flood.log" python3 "$GK_HERE/flood_sustained.py" --dst 192.0.2.1 --port "$GK_PORT" --sni h.test \
  --cert "$P/edge.pem" --key "$P/edge.key" --ca "$P/srvca/ca.pem" --seconds "$FLOOD_S" "${srcs[@]}"
FLOOD_PID=$LAST_PID
for _ in $(seq 1 150); do grep -q '^opened' "$T/flood.log" 2>/dev/null && break; sleep 0.1; done
expect_eq "the flood opened its connections" opened "$(head -1 "$T/flood.log")"
peak=0
for _ in $(seq 1 20); do
  n=$(metric og_gk_connections_active)
  ((${n:-0} > peak)) && peak=$n
  ((peak >= MAX_CONN)) && break
  sleep 0.1
done
echo "# open connections during the flood: up to $peak of max_connections $MAX_CONN; gatekeeper fds: $BASE_FDS before, $(fds) now"
# A place is taken at accept in one atomic step: never one over, even with 2 workers.
if ((peak == MAX_CONN)); then pass "the flood fills max_connections ($peak), never more"
else failcase "the flood fills max_connections: $peak open, expected exactly $MAX_CONN"; fi
touch "$T/go"
wait "$STEADY_PID" || true
wait "$FLOOD_PID" || true
res=$(grep '^requests=' "$T/steady.log" || echo "no result: $(tr '\n' ' ' <"$T/steady.log")")
echo "# verified clients during the flood: $res"
sed 's/^/# flood: /' "$T/flood.log" | grep 'kind=' | sort
awk '/kind=/ {split($2, n, "="); split($3, a, "="); split($4, r, "="); split($5, l, "="); A[n[2]] += a[2]; R[n[2]] += r[2]; L[n[2]] += l[2]}
  END {for (k in A) printf "# flood total %s: %d connections, %d reset or refused within 0.5 s, %d held until the server closed them\n", k, A[k], R[k], L[k]}' \
  "$T/flood.log"
echo "# gatekeeper: $(($(metric og_gk_refused_overload_total) - ${overload0:-0})) reset at accept for max_connections, $(($(metric og_gk_refused_source_limit_total) - ${source0:-0})) for the per-source cap"
read -r requests ok <<<"$(sed -E 's/^requests=([0-9]+) ok=([0-9]+).*/\1 \2/' <<<"$res")"
if [[ $requests =~ ^[0-9]+$ && $requests -gt 0 && $((ok * 100)) -ge $((requests * 99)) ]]; then
  pass "verified clients' success rate during the flood >= 99 % ($ok of $requests)"
else
  failcase "verified clients' success rate during the flood >= 99 %: $res"
fi
expect_match "the gatekeeper was full: connections reset at accept" '^[1-9]' \
  "$(($(metric og_gk_refused_overload_total) - ${overload0:-0}))"
expect_match "the attacker capped per source: connections reset at accept" '^[1-9]' \
  "$(($(metric og_gk_refused_source_limit_total) - ${source0:-0}))"
# Held open: closed by the server, but only after 0.5 s (its timeouts; a slot's client side
# counts "open" until the server's reset arrives, so open_max says less than this).
for kind in bare hello idle; do
  later=$(awk -v k="kind=$kind" '$2 == k {split($5, a, "="); s += a[2]} END {print s + 0}' "$T/flood.log")
  expect_match "flood kind $kind: connections held open, then closed by the server's timeouts ($later)" '^[1-9]' "$later"
done
# After the flood: every connection is gone, and so are their descriptors.
for _ in $(seq 1 150); do [[ $(own_fds) == "$BASE_FDS" ]] && break; sleep 0.1; done
expect_eq "gatekeeper fds back to the baseline after the flood (pooled upstream connections aside)" "$BASE_FDS" "$(own_fds)"
expect_eq "no connection left open" 0 "$(metric og_gk_connections_active)"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$P/srvca/ca.pem" --interface 198.51.100.10 \
  --resolve "h.test:$GK_PORT:192.0.2.1" --cert "$P/edge.pem" --key "$P/edge.key" "https://h.test:$GK_PORT/" || true)
expect_eq "a new verified client is served after the flood" 200 "$code"
gk_finish
