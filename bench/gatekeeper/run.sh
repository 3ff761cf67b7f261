#!/usr/bin/env bash
# Gatekeeper vs nginx 1.22 (ssl_verify_client on), measured by the same load generator in the
# same run. Loopback only; every phase is bounded in time. Prints markdown tables.
#
#   bench/gatekeeper/run.sh [BUILD_DIR]
#   env: ROUNDS=10 SECS=3 IDLE_CONNS=10000 DISTINCT=1000 LAT_SECS=10 HS_THREADS=3 QUICK=1
#        SERVER_CPU=0.3 (each server's CPU budget per worker; 1: none)
#        SECTIONS="idle hs lat ka" (a subset re-runs only those tables; lat without hs needs
#        LAT_RATE, the offered handshakes/s)
#
# Same settings on both sides: the same server certificates (ECDSA P-256 or RSA-2048), the same
# client CA (RSA-4096, SHA-512) and client leaf (RSA-2048), like Cloudflare's origin-pull chain,
# TLS 1.3 (and 1.2) default suites, the same upstream
# (a separate nginx answering 200) reached over a keep-alive pool by nginx, one worker each.
# "Tickets off" means no NewSessionTicket at all from either server (nginx needs
# `ssl_conf_command NumTickets 0` for that besides `ssl_session_tickets off`); the script checks
# it with `openssl s_client -msg` and stops if a server sends one. "Defaults" is each server
# as shipped (tickets on for both).
#
# Statistic, chosen before the run: server CPU time per accepted handshake (utime+stime of the
# server's processes from /proc, over the phase), median of ROUNDS rounds, with the inter-
# quartile range; the headline ratio is nginx's median over the gatekeeper's (> 1: the
# gatekeeper spends less CPU per handshake). Handshakes count only once the server accepted the
# certificate (loadgen.cpp). The servers are pinned to one CPU with a CPU budget of SERVER_CPU
# (default 0.3) per worker, the load generator and the upstream to another CPU (see "CPU
# pinning" below for why); a handshake or keep-alive phase whose server used less than 95 % of
# its budget is discarded and run again (twice at most; then it is kept and listed). Server
# orders alternate per round (ABBA).
set -euo pipefail
BUILD=${1:-${OG_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}}
export GK_BIN=$BUILD/gatekeeper/originguard-gatekeeper
LOADGEN=$BUILD/gatekeeper/og_gk_loadgen
ROUNDS=${ROUNDS:-10}
SECS=${SECS:-3}
IDLE=${IDLE_CONNS:-10000}
DISTINCT=${DISTINCT:-1000}
LAT_SECS=${LAT_SECS:-10}
HS_THREADS=${HS_THREADS:-3}
if [[ -n ${QUICK:-} ]]; then ROUNDS=1 SECS=1 IDLE=200 DISTINCT=20 LAT_SECS=2; fi
(( ROUNDS >= 1 )) || { echo "ROUNDS must be >= 1" >&2; exit 2; }
SECTIONS=" ${SECTIONS:-idle hs lat ka} "
has() { [[ $SECTIONS == *" $1 "* ]]; }
has hs || ! has lat || [[ -n ${LAT_RATE:-} ]] || { echo "SECTIONS has lat without hs: set LAT_RATE" >&2; exit 2; }
[[ -x $LOADGEN ]] || { echo "no $LOADGEN (build with -DOG_BENCH=ON)" >&2; exit 2; }
. "$(dirname "$0")/../../tests/e2e/gatekeeper/lib_gk.sh"
log() { echo "[${SECONDS}s] $*" >&2; }
gk_init
ulimit -n "$(ulimit -Hn)"
log "PKI"
gk_pki
_mk_server srv-d "d.test" ec
_mk_server srv-c "c.test" ec

# ---- the client PKI: an RSA-4096/SHA-512 CA, RSA-2048 leaves; DISTINCT more leaves, one key -----
B=$T/bench; mkdir -p "$B/many"
openssl req -x509 -newkey rsa:4096 -sha512 -nodes -keyout "$B/ca.key" -out "$B/ca.pem" -days 3650 \
  -subj "/CN=Bench origin-pull CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
_ca_conf "$B"
sed -i 's/^default_md = .*/default_md = sha512/' "$B/ca.cnf"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$B/leaf.key" 2>/dev/null
openssl req -new -key "$B/leaf.key" -subj "/CN=origin-pull.bench" -out "$B/leaf.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' >"$B/leaf.ext"
leaf() {  # serial out
  openssl x509 -req -sha512 -in "$B/leaf.csr" -CA "$B/ca.pem" -CAkey "$B/ca.key" -set_serial "$1" \
    -days 365 -extfile "$B/leaf.ext" -out "$2" 2>/dev/null
}
leaf 1 "$B/leaf.pem"
for i in $(seq 0 $((DISTINCT - 1))); do leaf $((1000 + i)) "$(printf '%s/many/%04d.pem' "$B" "$i")"; done
# A CRL that lists a revoked certificate (not one the load generator presents).
openssl ca -batch -config "$B/ca.cnf" -cert "$B/ca.pem" -keyfile "$B/ca.key" -in "$B/leaf.csr" \
  -extensions client_ext -days 365 -out "$B/revoked.pem" -notext 2>/dev/null
openssl ca -batch -config "$B/ca.cnf" -cert "$B/ca.pem" -keyfile "$B/ca.key" -revoke "$B/revoked.pem" 2>/dev/null
openssl ca -batch -config "$B/ca.cnf" -cert "$B/ca.pem" -keyfile "$B/ca.key" -gencrl -out "$B/ca.crl" 2>/dev/null

log "servers"
# ---- servers --------------------------------------------------------------------------------
UP_PORT=$(gk_free_port)
NGX_PORT=$(gk_free_port); NGXD_PORT=$(gk_free_port); NGX2_PORT=$(gk_free_port)
GK_PORT=$(gk_free_port); GK0_PORT=$(gk_free_port); GK2_PORT=$(gk_free_port)
USER_LINE=$([[ $(id -u) -eq 0 ]] && echo "user root;" || true)
ngx_conf() {  # name workers body
  mkdir -p "$T/$1"
  cat >"$T/$1/nginx.conf" <<CONF
$USER_LINE
worker_processes $2;
worker_rlimit_nofile 40000;
daemon off;
pid $T/$1/nginx.pid;
error_log $T/$1/error.log error;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path $T/$1/body; proxy_temp_path $T/$1/proxy;
  fastcgi_temp_path $T/$1/fcgi; uwsgi_temp_path $T/$1/uwsgi; scgi_temp_path $T/$1/scgi;
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
$3
}
CONF
}
ngx_server() {  # port name cert tickets(off|default) [extra]
  local t="ssl_session_tickets off; ssl_conf_command NumTickets 0;"
  [[ $4 == default ]] && t=""
  cat <<S
  server {
    listen 127.0.0.1:$1 ssl;
    server_name $2;
    ssl_certificate $P/$3.pem; ssl_certificate_key $P/$3.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_verify_client on; ssl_client_certificate $B/ca.pem; ssl_verify_depth 2;
    $t ${5:-}
    keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
S
}
mkdir -p "$T/upstream"
cat >"$T/upstream/nginx.conf" <<CONF
$USER_LINE
worker_processes 1;
worker_rlimit_nofile 40000;
daemon off;
pid $T/upstream/nginx.pid;
error_log $T/upstream/error.log error;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path $T/upstream/body; proxy_temp_path $T/upstream/proxy;
  fastcgi_temp_path $T/upstream/fcgi; uwsgi_temp_path $T/upstream/uwsgi; scgi_temp_path $T/upstream/scgi;
  server { listen 127.0.0.1:$UP_PORT; keepalive_requests 1000000; location / { return 200 "ok\\n"; } }
}
CONF
ngx_conf edge 1 "$(ngx_server "$NGX_PORT" a.test srv-a off)
$(ngx_server "$NGX_PORT" r.test srv-rsa off)
$(ngx_server "$NGX_PORT" c.test srv-c off "ssl_crl $B/ca.crl;")
$(ngx_server "$NGXD_PORT" d.test srv-d default)"
ngx_conf edge2 2 "$(ngx_server "$NGX2_PORT" a.test srv-a off)"
gk_host() {  # name cert tickets(off|default) [extra]
  cat <<H
[[host]]
names = ["$1"]
cert = "$P/$2.pem"
key = "$P/$2.key"
client_ca = "$B/ca.pem"
upstream = "127.0.0.1:$UP_PORT"
$([[ $3 == off ]] && echo "session_tickets = false")
${4:-}
H
}
gk_conf() {  # file port cache workers
  cat >"$1" <<TOML
[gatekeeper]
listen = ["127.0.0.1:$2"]
workers = $4
max_connections = 30000
# Every client is 127.0.0.1, not in an edge snapshot: without this the per-source cap (256)
# would refuse the idle phase's connections; nginx has no such cap.
max_connections_per_source = 0
verdict_cache_entries = $3
edge_ranges_file = "$T/none.json"
control_socket = ""
$(gk_host a.test srv-a off)
$(gk_host r.test srv-rsa off)
$(gk_host c.test srv-c off "crl = [\"$B/ca.crl\"]")
$(gk_host d.test srv-d default)
TOML
}
gk_conf "$T/gk.toml" "$GK_PORT" 1024 1
gk_conf "$T/gk0.toml" "$GK0_PORT" 0 1
gk_conf "$T/gk2.toml" "$GK2_PORT" 1024 2
gk_bg "$T/upstream/stderr" nginx -c "$T/upstream/nginx.conf" -p "$T/upstream"
gk_bg "$T/edge/stderr" nginx -c "$T/edge/nginx.conf" -p "$T/edge"
gk_bg "$T/edge2/stderr" nginx -c "$T/edge2/nginx.conf" -p "$T/edge2"
gk_bg "$T/gk.log" "$GK_BIN" --config "$T/gk.toml"; GK_PID=$LAST_PID
gk_bg "$T/gk0.log" "$GK_BIN" --config "$T/gk0.toml"; GK0_PID=$LAST_PID
gk_bg "$T/gk2.log" "$GK_BIN" --config "$T/gk2.toml"; GK2_PID=$LAST_PID
for p in $UP_PORT $NGX_PORT $NGXD_PORT $NGX2_PORT $GK_PORT $GK0_PORT $GK2_PORT; do gk_wait_port "$p"; done
workers() { pgrep -P "$(cat "$T/$1/nginx.pid")" | tr '\n' ' '; }
NGX_PIDS=$(workers edge); NGX2_PIDS=$(workers edge2)
[[ $(wc -w <<<"$NGX_PIDS") == 1 && $(wc -w <<<"$NGX2_PIDS") == 2 ]] || { echo "nginx workers: $NGX_PIDS / $NGX2_PIDS" >&2; exit 1; }

LG=(--cert "$B/leaf.pem" --key "$B/leaf.key")
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }

# ---- equal settings: which servers send NewSessionTickets ----------------------------------
tickets() {  # port sni tls: the number of NewSessionTicket messages the server sends
  local v=-tls1_3; [[ $3 == 1.2 ]] && v=-tls1_2
  # stdin ends after 0.5 s, when a server has long sent its tickets; s_client then hangs up
  { sleep 0.5; } | timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$2" $v -msg \
    -cert "$B/leaf.pem" -key "$B/leaf.key" 2>/dev/null | grep -c 'NewSessionTicket' || true
}
for s in ngx:$NGX_PORT gk:$GK_PORT gk0:$GK0_PORT; do
  IFS=: read -r name port <<<"$s"
  for host in a.test r.test c.test; do
    for v in 1.3 1.2; do
      n=$(tickets "$port" "$host" "$v")
      [[ $n == 0 ]] || { echo "equal settings broken: $name $host TLS $v sends $n NewSessionTicket(s) with tickets off" >&2; exit 1; }
    done
  done
done
NST_NGX=$(tickets "$NGXD_PORT" d.test 1.3); NST_GK=$(tickets "$GK_PORT" d.test 1.3)
echo "tickets off: no NewSessionTicket from either server (TLS 1.3 and 1.2); defaults: nginx sends $NST_NGX, gatekeeper $NST_GK (TLS 1.3)" >&2

rss_kb() { local s=0 p; for p in $1; do s=$((s + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done; echo $s; }
cpu_ticks() { local s=0 p; for p in $1; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $s; }
TCK=$(getconf CLK_TCK)

log "idle memory"
# ---- memory per idle connection, after one request each, on the fresh processes ------------
idle() {  # port pids: bytes of RSS per held connection, and the server's fds per connection
  local before after fds0 fds1 out open lpid p
  before=$(rss_kb "$2"); fds0=0; for p in $2; do fds0=$((fds0 + $(ls /proc/$p/fd | wc -l))); done
  "$LOADGEN" idle --port "$1" --sni a.test "${LG[@]}" --conns "$IDLE" --seconds 8 >"$T/idle.out" &
  lpid=$!
  for _ in $(seq 1 1200); do grep -q open= "$T/idle.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  after=$(rss_kb "$2"); fds1=0; for p in $2; do fds1=$((fds1 + $(ls /proc/$p/fd | wc -l))); done
  out=$(cat "$T/idle.out"); wait "$lpid" || true
  open=$(field open <<<"$out")
  (( ${open:-0} > 0 )) || { echo "idle phase on port $1 opened no connection: $out" >&2; exit 1; }
  echo "$(( (after - before) * 1024 / open )) $(awk -v d=$((fds1 - fds0)) -v n="$open" 'BEGIN { printf "%.2f", d / n }') $open $(field failed <<<"$out")"
}
MEM=()
has idle && MEM=("ngx $(idle "$NGX_PORT" "$NGX_PIDS")" "gk $(idle "$GK_PORT" "$GK_PID")")

# ---- CPU pinning and the server's CPU budget -------------------------------------------------
# A TLS client spends about as much CPU per handshake as the server (docs/BENCHMARKS.md), so with
# two CPUs a load generator on one of them cannot keep a server owning the other one busy. Each
# server therefore runs in a cgroup of its own with a budget of SERVER_CPU of a CPU per worker
# (cpu.max on cgroup v2, cpu.cfs_quota_us on v1), on a CPU of its own, while the load generator
# (and the upstream) have a whole other CPU: the server saturates and the load generator does
# not. "Busy" is the server's CPU time over that budget. The budget limits how much CPU the
# server may use, not what a handshake costs, which is the statistic. SERVER_CPU=1 turns it off.
mapfile -t CPUS < <(python3 -c 'import os; print("\n".join(map(str, sorted(os.sched_getaffinity(0)))))')
PIN_LG=(); PINNED=0
if (( ${#CPUS[@]} >= 2 )); then
  PIN_LG=(taskset -c "${CPUS[0]}"); PINNED=1
  for pid in $NGX_PIDS $GK_PID $GK0_PID; do taskset -apc "${CPUS[1]}" "$pid" >/dev/null; done
  for pid in $(cat "$T/upstream/nginx.pid") $(workers upstream); do taskset -apc "${CPUS[0]}" "$pid" >/dev/null; done
fi
SERVER_CPU=${SERVER_CPU:-0.3}
CG_PERIOD=20000 CG_V='' CG_DIR='' CG_ENABLED=0
cg_cleanup() {  # back to the root cgroup, then remove ours
  local d p
  for d in ${CG_DIR:+"$CG_DIR"/*/}; do
    [[ -d $d ]] || continue
    while read -r p; do echo "$p" >"$CG_DIR/../cgroup.procs" 2>/dev/null || true; done <"$d/cgroup.procs"
    rmdir "$d" 2>/dev/null || true
  done
  [[ -z $CG_DIR ]] || rmdir "$CG_DIR" 2>/dev/null || true
  if ((CG_ENABLED)); then echo -cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true; fi
}
trap 'cg_cleanup; gk_cleanup' EXIT
if awk -v b="$SERVER_CPU" 'BEGIN { exit !(b > 0 && b < 1) }'; then
  if [[ -w /sys/fs/cgroup/cgroup.subtree_control ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    if ! grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control; then
      echo +cpu >/sys/fs/cgroup/cgroup.subtree_control ||
        { echo "cannot enable the cgroup v2 cpu controller: set SERVER_CPU=1 (no budget)" >&2; exit 2; }
      CG_ENABLED=1  # given back at the end
    fi
    CG_V=2 CG_DIR=/sys/fs/cgroup/og-bench.$$
  elif [[ -w /sys/fs/cgroup/cpu/cgroup.procs ]]; then
    CG_V=1 CG_DIR=/sys/fs/cgroup/cpu/og-bench.$$
  else
    echo "no writable cgroup cpu controller: run as root, or set SERVER_CPU=1 (no budget)" >&2; exit 2
  fi
  mkdir "$CG_DIR"
  # v2: the servers' groups are children of ours, which must hand them the cpu controller
  if [[ $CG_V == 2 ]]; then echo +cpu >"$CG_DIR/cgroup.subtree_control"; fi
else
  SERVER_CPU=1
fi
cg_limit() {  # name workers|max: the group's budget (max: none)
  local d=$CG_DIR/$1 q=-1
  [[ $2 != max ]] && q=$(awk -v b="$SERVER_CPU" -v n="$2" -v p=$CG_PERIOD 'BEGIN { printf "%d", b * n * p }')
  if [[ $CG_V == 2 ]]; then
    echo "$([[ $q == -1 ]] && echo max || echo "$q") $CG_PERIOD" >"$d/cpu.max"
  else
    echo $CG_PERIOD >"$d/cpu.cfs_period_us"; echo "$q" >"$d/cpu.cfs_quota_us"
  fi
}
cg_put() {  # name workers pids...: a cgroup with the budget of that many workers
  local name=$1 n=$2 p; shift 2
  [[ -n $CG_DIR ]] || return 0
  mkdir "$CG_DIR/$name"
  cg_limit "$name" "$n"
  for p in "$@"; do echo "$p" >"$CG_DIR/$name/cgroup.procs"; done
}
cg_all() {  # on|off: every server's budget (the latency phase runs without one)
  [[ -n $CG_DIR ]] || return 0
  local g
  for g in ngx:1 gk:1 gk0:1 ngx2:2 gk2:2; do cg_limit "${g%:*}" "$([[ $1 == off ]] && echo max || echo "${g#*:}")"; done
}
# shellcheck disable=SC2086  # pid lists
{ cg_put ngx 1 $NGX_PIDS; cg_put gk 1 $GK_PID; cg_put gk0 1 $GK0_PID; cg_put ngx2 2 $NGX2_PIDS; cg_put gk2 2 $GK2_PID; }

log "handshakes"
# ---- handshake workloads ----------------------------------------------------------------------
# name|description|sni|ngx port|loadgen options|servers (ngx gk gk0 or ngx2 gk2)
WORKLOADS=(
  "tls13-ec|TLS 1.3, ECDSA P-256 server key, tickets off|a.test|$NGX_PORT||1"
  "tls12-ec|TLS 1.2, ECDSA P-256 server key, tickets off|a.test|$NGX_PORT|--tls 1.2|1"
  "tls13-rsa|TLS 1.3, RSA-2048 server key, tickets off|r.test|$NGX_PORT||1"
  "crl|TLS 1.3, ECDSA, client CA with a CRL on both sides|c.test|$NGX_PORT||1"
  "distinct|TLS 1.3, ECDSA, $DISTINCT distinct client certificates in turn|a.test|$NGX_PORT|--certs-dir $B/many --certs-n $DISTINCT|1"
  "defaults|TLS 1.3, ECDSA, each server's defaults as shipped (tickets on)|d.test|$NGXD_PORT||1"
  "2workers|TLS 1.3, ECDSA, tickets off, 2 workers each (unpinned)|a.test|$NGX2_PORT||2"
)
DATA=$T/data.tsv
: >"$DATA"
echo "meta rounds $ROUNDS secs $SECS idle $IDLE distinct $DISTINCT nst_ngx $NST_NGX nst_gk $NST_GK pinned $PINNED server_cpu $SERVER_CPU" >>"$DATA"
for i in "${!MEM[@]}"; do echo "idle ${MEM[$i]}" >>"$DATA"; done
for w in "${WORKLOADS[@]}"; do IFS='|' read -r name desc _ _ _ nw <<<"$w"; echo "workload $name $nw $desc" >>"$DATA"; done
# Runs one load of SECS seconds (the command after `--`) against a server, up to three times,
# until the server used >= 95 % of its CPU budget over those seconds; sets OUT (the load
# generator's line), CPU (the server's CPU seconds), BUSY (the fraction of its budget), LG_BUSY
# (the load generator's CPU time during the load over its length: below 1 when it had CPU to
# spare) and TRY; returns 1 if no try reached 95 %. The rule needs a CPU the server does not
# share with the load generator: pinned, or under a budget. The server is idle while the load
# generator starts (loading certificates), so its CPU is counted around the whole process but
# compared with the load's SECS.
saturate() {  # label pids workers -- cmd...
  local label=$1 pids=$2 nw=$3 t0 t1; shift 4
  for TRY in 1 2 3; do
    t0=$(cpu_ticks "$pids")
    OUT=$("$@") || { echo "phase $label failed: $OUT" >&2; exit 1; }
    t1=$(cpu_ticks "$pids")
    CPU=$(awk -v d=$((t1 - t0)) -v tck="$TCK" 'BEGIN { printf "%.4f", d / tck }')
    LG_BUSY=$(awk -v c="$(field cpu_s <<<"$OUT")" -v s="$SECS" 'BEGIN { printf "%.3f", c / s }')
    BUSY=$(awk -v c="$CPU" -v s="$SECS" -v b="$SERVER_CPU" -v n="$nw" 'BEGIN { printf "%.3f", c / (s * b * n) }')
    if ((PINNED == 0)) || { ((nw == 2)) && [[ $SERVER_CPU == 1 ]]; } || awk -v u="$BUSY" 'BEGIN { exit !(u >= 0.95) }'; then
      return 0
    fi
    log "$label: server $BUSY of its CPU budget, < 95 %: discarded (try $TRY)"
  done
  return 1
}
phase() {  # workload-index server round: one phase, a line in $DATA
  local w=$1 s=$2 r=$3 name desc sni nport opts nw port pids lg th ok=ok line
  IFS='|' read -r name desc sni nport opts nw <<<"${WORKLOADS[$w]}"
  case $s in
    ngx) if ((nw == 2)); then port=$NGX2_PORT pids=$NGX2_PIDS; else port=$nport pids=$NGX_PIDS; fi ;;
    gk) if ((nw == 2)); then port=$GK2_PORT pids=$GK2_PID; else port=$GK_PORT pids=$GK_PID; fi ;;
    gk0) port=$GK0_PORT pids=$GK0_PID ;;
  esac
  lg=("${PIN_LG[@]}"); th=$HS_THREADS
  ((nw == 2)) && { lg=(); th=$((HS_THREADS * 2)); }
  # shellcheck disable=SC2086  # opts is a word list
  saturate "$name/$s" "$pids" "$nw" -- "${lg[@]}" "$LOADGEN" hs --port "$port" --sni "$sni" "${LG[@]}" $opts \
    --threads "$th" --seconds "$SECS" || ok=low
  # server CPU µs per accepted handshake, handshakes/s, the busy fraction of its budget
  line=$(awk -v a="$(field accepted <<<"$OUT")" -v c="$CPU" -v secs="$SECS" \
    'BEGIN { if (a <= 0) exit 1; printf "%.1f %.0f", c * 1e6 / a, a / secs }') || {
    echo "handshake phase $name/$s accepted nothing: $OUT" >&2; exit 1; }
  echo "hs $name $s $r $line $BUSY $TRY $ok $LG_BUSY" >>"$DATA"
}
has hs && for r in $(seq 1 "$ROUNDS"); do
  for w in "${!WORKLOADS[@]}"; do
    IFS='|' read -r _ _ _ _ _ nw <<<"${WORKLOADS[$w]}"
    servers=(ngx gk gk0); ((nw == 2)) && servers=(ngx gk)
    ((r % 2 == 0)) && mapfile -t servers < <(printf '%s\n' "${servers[@]}" | tac)
    for s in "${servers[@]}"; do phase "$w" "$s" "$r"; done
  done
  log "round $r/$ROUNDS done"
done

log "latency"
# ---- latency at a fixed offered load: a quarter of nginx's capacity on one whole CPU (1 s over
# its median CPU time per handshake on the first workload), with no CPU budget. A quarter, so
# that the load generator, which spends more per handshake than the server (it signs with the
# RSA-2048 client key), stays at about a third of its CPU and adds no queueing of its own. ---
RATE=${LAT_RATE:-}
has hs && RATE=$(awk '$1 == "hs" && $2 == "tls13-ec" && $3 == "ngx" { print $5 }' "$DATA" | sort -n |
  awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; r = int(1e6 / m / 4); print (r < 10 ? 10 : r) }')
echo "meta rate $RATE" >>"$DATA"
cg_all off
has lat && for r in $(seq 1 "$(( ROUNDS < 3 ? ROUNDS : 3 ))"); do
  order=(ngx:$NGX_PORT gk:$GK_PORT); ((r % 2 == 0)) && order=(gk:$GK_PORT ngx:$NGX_PORT)
  for s in "${order[@]}"; do
    IFS=: read -r name port <<<"$s"
    out=$("${PIN_LG[@]}" "$LOADGEN" lat --port "$port" --sni a.test "${LG[@]}" --rate "$RATE" --threads 16 --seconds "$LAT_SECS") || {
      echo "latency phase $name failed: $out" >&2; exit 1; }
    echo "lat $name $r $(field p50_us <<<"$out") $(field p99_us <<<"$out")" >>"$DATA"
  done
done
cg_all on

log "keep-alive"
# ---- keep-alive requests, pinned, rounds -------------------------------------------------------
has ka && for r in $(seq 1 "$ROUNDS"); do
  order=(ngx:$NGX_PORT:$NGX_PIDS gk:$GK_PORT:$GK_PID); ((r % 2 == 0)) && order=(gk:$GK_PORT:$GK_PID ngx:$NGX_PORT:$NGX_PIDS)
  for s in "${order[@]}"; do
    IFS=: read -r name port pids <<<"$s"
    ok=ok
    saturate "ka/$name" "$pids" 1 -- "${PIN_LG[@]}" "$LOADGEN" ka --port "$port" --sni a.test "${LG[@]}" \
      --threads 16 --seconds "$SECS" || ok=low
    echo "ka $name $r $(field req_per_s <<<"$OUT") $(awk -v c="$CPU" -v n="$(field requests <<<"$OUT")" \
      'BEGIN { printf "%.2f", c * 1e6 / (n > 0 ? n : 1) }') $(field p99_us <<<"$OUT") $BUSY $TRY $ok $LG_BUSY" >>"$DATA"
  done
done
[[ -n ${BENCH_DATA:-} ]] && cp "$DATA" "$BENCH_DATA"
python3 "$(dirname "$0")/report.py" "$DATA"
