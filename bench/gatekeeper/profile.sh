#!/usr/bin/env bash
# Where the gatekeeper and nginx spend a request or a handshake: one server of each, the same
# certificates, the same upstream, the same load, one after the other; loopback only, bounded.
#
#   bench/gatekeeper/profile.sh [BUILD_DIR]
#   env: MODE=ka|hs (keep-alive requests or full handshakes), TLS=1.3|1.2, VC=1024 (the
#        gatekeeper's verdict_cache_entries; 0 = off), TH (client threads: 16 for ka, 3 for hs),
#        HOW=strace|perf|stat, OUT=dir (default a new /tmp/og-gk-profile.*, printed; kept)
#
# HOW=strace: `strace -c -f` on the server for 4 s: system calls by name; divide by the
#   requests it served in those 4 s (the counts per request do not depend on strace's slowdown).
# HOW=perf: `perf record -g` on the server for 4 s; prints the share of samples per library.
# HOW=stat: `perf stat` counts of system calls and context switches over 4 s.
# The load generator's own CPU time (`/usr/bin/time`) is printed too: on a small machine it is
# what caps the servers' handshake rate (docs/BENCHMARKS.md).
set -euo pipefail
BUILD=${1:-${OG_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}}
export GK_BIN=$BUILD/gatekeeper/originguard-gatekeeper
LOADGEN=$BUILD/gatekeeper/og_gk_loadgen
MODE=${MODE:-ka} TLS=${TLS:-1.3} VC=${VC:-1024} HOW=${HOW:-strace}
TH=${TH:-$([[ $MODE == ka ]] && echo 16 || echo 3)}
[[ -x $LOADGEN ]] || { echo "no $LOADGEN (build with -DOG_BENCH=ON)" >&2; exit 2; }
# The client CA as in run.sh: RSA-4096, like Cloudflare's origin-pull CA.
export GK_GLOBAL_CA_BITS=${GK_GLOBAL_CA_BITS:-4096}
. "$(dirname "$0")/../../tests/e2e/gatekeeper/lib_gk.sh"
gk_init
gk_pki
OUT=${OUT:-$(mktemp -d /tmp/og-gk-profile.XXXXXX)}
mkdir -p "$OUT"
B=$T/pki/global
UP_PORT=$(gk_free_port); GK_PORT=$(gk_free_port); NGX_PORT=$(gk_free_port)
USER_LINE=$([[ $(id -u) -eq 0 ]] && echo "user root;" || true)
ngx_conf() {  # dir server-block
  mkdir -p "$T/$1"
  cat >"$T/$1/nginx.conf" <<CONF
$USER_LINE
worker_processes 1; daemon off; pid $T/$1/nginx.pid; error_log $T/$1/error.log error;
events { worker_connections 3000; }
http { access_log off; client_body_temp_path $T/$1/body; proxy_temp_path $T/$1/proxy;
  fastcgi_temp_path $T/$1/fcgi; uwsgi_temp_path $T/$1/uwsgi; scgi_temp_path $T/$1/scgi;
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
  $2 }
CONF
}
ngx_conf up "server { listen 127.0.0.1:$UP_PORT; keepalive_requests 1000000; location / { return 200 ok; } }"
ngx_conf edge "server { listen 127.0.0.1:$NGX_PORT ssl; server_name a.test;
    ssl_certificate $P/srv-a.pem; ssl_certificate_key $P/srv-a.key; ssl_protocols TLSv1.2 TLSv1.3;
    ssl_verify_client on; ssl_client_certificate $B/ca.pem; ssl_verify_depth 2;
    ssl_session_tickets off; ssl_conf_command NumTickets 0; keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
cat >"$T/gk.toml" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$GK_PORT"]
workers = 1
max_connections_per_source = 0
verdict_cache_entries = $VC
edge_ranges_file = "$T/none.json"
control_socket = ""
[[host]]
names = ["a.test"]
cert = "$P/srv-a.pem"
key = "$P/srv-a.key"
client_ca = "$B/ca.pem"
upstream = "127.0.0.1:$UP_PORT"
session_tickets = false
TOML
gk_bg "$T/up/stderr" nginx -c "$T/up/nginx.conf" -p "$T/up"
gk_bg "$T/edge/stderr" nginx -c "$T/edge/nginx.conf" -p "$T/edge"
gk_bg "$T/gk.log" "$GK_BIN" --config "$T/gk.toml"; GK_PID=$LAST_PID
for p in $UP_PORT $GK_PORT $NGX_PORT; do gk_wait_port "$p"; done
NGX_PID=$(pgrep -P "$(cat "$T/edge/nginx.pid")")
echo "mode=$MODE tls=$TLS verdict_cache_entries=$VC threads=$TH how=$HOW out=$OUT"
for s in nginx:$NGX_PORT:$NGX_PID gatekeeper:$GK_PORT:$GK_PID; do
  IFS=: read -r name port pid <<<"$s"
  o=$OUT/$name-$MODE
  /usr/bin/time -f "loadgen_cpu_s=%U+%S" -o "$o.time" "$LOADGEN" "$MODE" --port "$port" --sni a.test \
    --cert "$P/edge.pem" --key "$P/edge.key" --tls "$TLS" --threads "$TH" --seconds 6 >"$o.lg" &
  lp=$!
  sleep 1
  case $HOW in
    strace) timeout -s INT 4 strace -c -f -p "$pid" -o "$o.strace" >/dev/null 2>&1 || true ;;
    perf) perf record -F 1999 -g -p "$pid" -o "$o.perf" -- sleep 4 >/dev/null 2>&1 ;;
    stat) perf stat -e raw_syscalls:sys_enter,context-switches,task-clock -x, -o "$o.stat" -p "$pid" -- sleep 4 ;;
    *) echo "HOW must be strace, perf or stat" >&2; exit 2 ;;
  esac
  wait "$lp" || { echo "$name: the load generator failed: $(cat "$o.lg")" >&2; exit 1; }
  echo "== $name: $(cat "$o.lg") $(cat "$o.time")"
  case $HOW in
    strace) sed -n '3,/^---/p' "$o.strace" | grep -v '^---' | awk '{ printf "  %-14s %s calls, %s errors\n", $NF, $4, (NF == 6 ? $5 : 0) }' ;;
    perf) perf report -i "$o.perf" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9.]+%' | head -8 || true ;;
    stat) grep -v '^#' "$o.stat" | grep -v '^$' ;;
  esac
done
