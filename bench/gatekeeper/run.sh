#!/usr/bin/env bash
# Gatekeeper vs nginx (ssl_verify_client on), same certificates, TLS 1.3 defaults, one worker
# each, the same upstream (a separate nginx returning "ok") and the same load generator
# (og_gk_loadgen, presenting an ECDSA client cert issued by an RSA-4096 "origin-pull" CA like
# Cloudflare's). Loopback only, every phase bounded in time. Prints a markdown table.
#   bench/gatekeeper/run.sh [BUILD_DIR]   (env: SECONDS_PER_RUN=5 ROUNDS=5 IDLE_CONNS=10000 HS_THREADS=3)
set -euo pipefail
BUILD=${1:-${OG_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}}
export GK_BIN=$BUILD/gatekeeper/originguard-gatekeeper
LOADGEN=$BUILD/gatekeeper/og_gk_loadgen
SECS=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-5}
IDLE=${IDLE_CONNS:-10000}
HS_THREADS=${HS_THREADS:-3}
export GK_GLOBAL_CA_BITS=4096
. "$(dirname "$0")/../../tests/e2e/gatekeeper/lib_gk.sh"
gk_init
ulimit -n "$(ulimit -Hn)"
gk_pki
UP_PORT=$(gk_free_port); NGX_PORT=$(gk_free_port); GK_PORT=$(gk_free_port); GK0_PORT=$(gk_free_port)
USER_LINE=$([[ $(id -u) -eq 0 ]] && echo "user root;" || true)

ngx_conf() {  # name body
  mkdir -p "$T/$1"
  cat >"$T/$1/nginx.conf" <<CONF
$USER_LINE
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $T/$1/nginx.pid;
error_log $T/$1/error.log error;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path $T/$1/body; proxy_temp_path $T/$1/proxy;
  fastcgi_temp_path $T/$1/fcgi; uwsgi_temp_path $T/$1/uwsgi; scgi_temp_path $T/$1/scgi;
$2
}
CONF
}
ngx_conf upstream "  server { listen 127.0.0.1:$UP_PORT; keepalive_requests 1000000; location / { return 200 \"ok\\n\"; } }"
tls_server() {  # name cert
  cat <<S
  server {
    listen 127.0.0.1:$NGX_PORT ssl;
    server_name $1;
    ssl_certificate $P/$2.pem; ssl_certificate_key $P/$2.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_verify_client on; ssl_client_certificate $P/global/ca.pem; ssl_verify_depth 2;
    ssl_session_cache off; ssl_session_tickets off;
    keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
S
}
ngx_conf edge "  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
$(tls_server a.test srv-a)
$(tls_server r.test srv-rsa)"
gk_conf() {  # file port cache
  cat >"$1" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$2"]
workers = 1
max_connections = 30000
verdict_cache_entries = $3
edge_ranges_file = "$T/none.json"
control_socket = ""
[[host]]
names = ["a.test"]
cert = "$P/srv-a.pem"
key = "$P/srv-a.key"
client_ca = "$P/global/ca.pem"
session_tickets = false
upstream = "127.0.0.1:$UP_PORT"
[[host]]
names = ["r.test"]
cert = "$P/srv-rsa.pem"
key = "$P/srv-rsa.key"
client_ca = "$P/global/ca.pem"
session_tickets = false
upstream = "127.0.0.1:$UP_PORT"
TOML
}
gk_conf "$T/gk.toml" "$GK_PORT" 1024
gk_conf "$T/gk0.toml" "$GK0_PORT" 0
gk_bg "$T/upstream/stderr" nginx -c "$T/upstream/nginx.conf" -p "$T/upstream"
gk_bg "$T/edge/stderr" nginx -c "$T/edge/nginx.conf" -p "$T/edge"
gk_bg "$T/gk.log" "$GK_BIN" --config "$T/gk.toml"; GK_PID=$LAST_PID
gk_bg "$T/gk0.log" "$GK_BIN" --config "$T/gk0.toml"; GK0_PID=$LAST_PID
for p in $UP_PORT $NGX_PORT $GK_PORT $GK0_PORT; do gk_wait_port "$p"; done
NGX_WORKER=$(pgrep -P "$(cat "$T/edge/nginx.pid")" | head -1)

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Memory first, on the fresh processes: a later phase's freed memory would be reused by the
# idle connections (glibc keeps it, jemalloc returns it) and hide part of their cost.
idle() {  # port pid
  local before after out
  before=$(rss_kb "$2")
  "$LOADGEN" idle "$1" a.test "$P/edge.pem" "$P/edge.key" "$IDLE" 8 >"$T/idle.out" &
  local lpid=$!
  for _ in $(seq 1 600); do grep -q open= "$T/idle.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  after=$(rss_kb "$2")
  out=$(cat "$T/idle.out")
  wait "$lpid" || true
  local open; open=$(echo "$out" | field open)
  (( ${open:-0} > 0 )) || { echo "idle phase on port $1 opened no connection: $out" >&2; exit 1; }
  echo "$(( (after - before) * 1024 / open ))"
}
ngx_mem=$(idle "$NGX_PORT" "$NGX_WORKER"); gk_mem=$(idle "$GK_PORT" "$GK_PID")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime+stime, all threads
cpu_us() {  # TICKS_BEFORE TICKS_AFTER COUNT: server CPU µs per handshake or request
  python3 -c "print(round(($2 - $1) * 1e6 / $(getconf CLK_TCK) / max(1.0, $3), 1))"
}
median() { python3 -c 'import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:]), 1))' "$@"; }
# Handshakes: each server gets one CPU to itself and the load generator another (the first two
# CPUs this shell may use, when there are two), so the server is the bottleneck and its rate is
# its capacity; the phases of nginx, the gatekeeper and the gatekeeper without its verdict cache
# are interleaved for ROUNDS rounds (the machine's speed drifts) and the medians are compared.
# Server CPU per handshake is read from /proc. The servers' CPU masks are restored afterwards.
(( ROUNDS >= 1 )) || { echo "ROUNDS must be >= 1" >&2; exit 2; }
mapfile -t CPUS < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
PIN_LG=(); declare -A MASK
if (( ${#CPUS[@]} >= 2 )); then
  PIN_LG=(taskset -c "${CPUS[0]}")
  for pid in "$NGX_WORKER" "$GK_PID" "$GK0_PID"; do
    MASK[$pid]=$(taskset -pc "$pid" | sed 's/.*: //')
    taskset -apc "${CPUS[1]}" "$pid" >/dev/null
  done
fi
declare -A R
declare -A HS CPU
for _ in $(seq 1 "$ROUNDS"); do
  for host in a.test r.test; do
    for s in ngx:$NGX_PORT:$NGX_WORKER gk:$GK_PORT:$GK_PID gk0:$GK0_PORT:$GK0_PID; do
      IFS=: read -r name port pid <<<"$s"
      t0=$(cpu_ticks "$pid")
      out=$("${PIN_LG[@]}" "$LOADGEN" hs "$port" "$host" "$P/edge.pem" "$P/edge.key" "$HS_THREADS" "$SECS")
      t1=$(cpu_ticks "$pid")
      hs=$(echo "$out" | field hs_per_s)
      if [[ $(echo "$out" | field failed) != 0 ]] || ! (( ${hs%.*} > 0 )); then
        echo "handshake phase $name $host failed: $out" >&2
        exit 1
      fi
      HS[${name}_$host]+=" $hs"
      CPU[${name}_$host]+=" $(cpu_us "$t0" "$t1" "$hs * $SECS")"
    done
  done
done
for k in "${!HS[@]}"; do
  R[$k]=$(median ${HS[$k]}); R[cpu_$k]=$(median ${CPU[$k]})
  echo "rounds $k: hs/s${HS[$k]}; server CPU µs/handshake${CPU[$k]}" >&2
done
# Each round's gatekeeper phase ran seconds after nginx's: the median of the per-round ratios
# cancels the machine's slow drifts that a ratio of medians keeps.
paired() {  # "a1 a2 .." "b1 b2 ..": median of ai/bi
  python3 -c 'import statistics,sys; a,b=(list(map(float,x.split())) for x in sys.argv[1:3]); print("%.2f" % statistics.median(x/y for x,y in zip(a,b)))' "$1" "$2"
}
for host in a.test r.test; do
  R[pair_$host]=$(paired "${HS[gk_$host]}" "${HS[ngx_$host]}")
  R[pair_cpu_$host]=$(paired "${CPU[ngx_$host]}" "${CPU[gk_$host]}")
done
for pid in "${!MASK[@]}"; do taskset -apc "${MASK[$pid]}" "$pid" >/dev/null; done  # keep-alive: unpinned
ka() {  # port pid: the load generator's line plus cpu_us= (server CPU per request)
  local t0 t1 out
  t0=$(cpu_ticks "$2")
  out=$("$LOADGEN" ka "$1" a.test "$P/edge.pem" "$P/edge.key" 16 "$SECS")
  t1=$(cpu_ticks "$2")
  echo "$out cpu_us=$(cpu_us "$t0" "$t1" "$(echo "$out" | field requests)")"
}
ngx_ka=$(ka "$NGX_PORT" "$NGX_WORKER"); gk_ka=$(ka "$GK_PORT" "$GK_PID")

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
cat <<MD
| metric (1 worker each, TLS 1.3, client cert from RSA-4096 CA) | nginx 1.22 | gatekeeper | ratio |
|---|---|---|---|
| full mTLS handshakes/s, ECDSA P-256 server key (median of $ROUNDS) | ${R[ngx_a.test]} | ${R[gk_a.test]} (no verdict cache: ${R[gk0_a.test]}) | $(ratio "${R[gk_a.test]}" "${R[ngx_a.test]}") (per round: ${R[pair_a.test]}) |
| server CPU µs per handshake, ECDSA P-256 | ${R[cpu_ngx_a.test]} | ${R[cpu_gk_a.test]} (no verdict cache: ${R[cpu_gk0_a.test]}) | $(ratio "${R[cpu_ngx_a.test]}" "${R[cpu_gk_a.test]}") (per round: ${R[pair_cpu_a.test]}) |
| full mTLS handshakes/s, RSA-2048 server key (median of $ROUNDS) | ${R[ngx_r.test]} | ${R[gk_r.test]} (no verdict cache: ${R[gk0_r.test]}) | $(ratio "${R[gk_r.test]}" "${R[ngx_r.test]}") (per round: ${R[pair_r.test]}) |
| server CPU µs per handshake, RSA-2048 | ${R[cpu_ngx_r.test]} | ${R[cpu_gk_r.test]} (no verdict cache: ${R[cpu_gk0_r.test]}) | $(ratio "${R[cpu_ngx_r.test]}" "${R[cpu_gk_r.test]}") (per round: ${R[pair_cpu_r.test]}) |
| keep-alive req/s through to upstream (16 conns) | $(echo "$ngx_ka" | field req_per_s) | $(echo "$gk_ka" | field req_per_s) | $(ratio "$(echo "$gk_ka" | field req_per_s)" "$(echo "$ngx_ka" | field req_per_s)") |
| server CPU µs per keep-alive request | $(echo "$ngx_ka" | field cpu_us) | $(echo "$gk_ka" | field cpu_us) | $(ratio "$(echo "$ngx_ka" | field cpu_us)" "$(echo "$gk_ka" | field cpu_us)") |
| keep-alive latency p50 / p99 (µs) | $(echo "$ngx_ka" | field p50_us) / $(echo "$ngx_ka" | field p99_us) | $(echo "$gk_ka" | field p50_us) / $(echo "$gk_ka" | field p99_us) | |
| memory per idle mTLS connection ($IDLE open), bytes RSS | $ngx_mem | $gk_mem | $(ratio "$gk_mem" "$ngx_mem") |
MD
