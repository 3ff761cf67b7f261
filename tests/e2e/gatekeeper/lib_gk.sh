# Helpers for gatekeeper e2e tests: a throwaway PKI made with the openssl CLI, free loopback
# ports, processes started in the test's temp dir and stopped by PID on exit (even on failure).
# Source from a test: `. "$(dirname "$0")/lib_gk.sh"; gk_init`.
set -euo pipefail

GK_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GK_BIN=${GK_BIN:-$(cd "$GK_HERE/../../.." && pwd)/build/gatekeeper/originguard-gatekeeper}
GK_PIDS=()
GK_FAILS=0
GK_PASSES=0

gk_cleanup() {
  local pid
  for pid in "${GK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${GK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${GK_KEEP:-} ]]; then echo "kept $T"; else rm -rf "$T"; fi
}

gk_init() {
  T=$(mktemp -d /tmp/gk-e2e.XXXXXX)
  trap gk_cleanup EXIT
  [[ -x $GK_BIN ]] || { echo "gatekeeper binary not found: $GK_BIN" >&2; exit 1; }
}

# Re-runs the calling test inside a network namespace of its own (needs root; exit 77 skips
# without): lo up with 127.0.0.1 plus the given addresses (IPv6 without DAD), so clients can
# take any source address with curl --interface / bind(). Everything the test starts runs in
# the namespace; it is removed when the test ends, whatever happened. Call before gk_init.
gk_enter_netns() {  # address/len...
  [[ -n ${GK_NETNS:-} ]] && return 0
  [[ $(id -u) -eq 0 ]] || { echo "SKIP: $(basename "$0") needs root (network namespace)"; exit 77; }
  local ns="og-gk-$$" a rc=0
  ip netns add "$ns"
  # shellcheck disable=SC2064  # $ns is meant to be expanded now
  trap "for p in \$(ip netns pids $ns 2>/dev/null); do kill -9 \$p 2>/dev/null; done; ip netns del $ns 2>/dev/null" EXIT
  ip -n "$ns" link set lo up
  for a in "$@"; do
    if [[ $a == *:* ]]; then ip -n "$ns" addr add "$a" dev lo nodad; else ip -n "$ns" addr add "$a" dev lo; fi
  done
  GK_NETNS=$ns ip netns exec "$ns" bash "$0" || rc=$?
  exit "$rc"
}

# Stops the gatekeeper started by gk_start (to start another configuration).
gk_stop() {
  kill "$GK_PID" 2>/dev/null || true
  wait "$GK_PID" 2>/dev/null || true
}

gk_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

gk_wait_port() {  # port [host]
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on ${2:-127.0.0.1}:$1" >&2
  return 1
}

gk_bg() {  # logfile cmd... ; remembers the PID for cleanup
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  GK_PIDS+=($!)
  LAST_PID=$!
}

pass() { GK_PASSES=$((GK_PASSES + 1)); echo "ok   - $*"; }
failcase() { GK_FAILS=$((GK_FAILS + 1)); echo "FAIL - $*"; }
expect_eq() {  # name expected actual
  if [[ "$2" == "$3" ]]; then pass "$1"; else failcase "$1: expected [$2], got [$3]"; fi
}
expect_match() {  # name regex actual
  if [[ "$3" =~ $2 ]]; then pass "$1"; else failcase "$1: expected /$2/, got [$3]"; fi
}
gk_finish() {
  echo "# $GK_PASSES passed, $GK_FAILS failed"
  if ((GK_FAILS)); then
    echo "--- gatekeeper log (tail) ---"; tail -n 40 "$T"/gk.log 2>/dev/null || true
    exit 1
  fi
}

# ---- PKI ------------------------------------------------------------------------------
# $T/pki: server certs (a.test, b.test, ... ECDSA and RSA), a fake global "origin-pull" CA
# with edge/revoked/expired/future client certs and a CRL, an "other zone" CA, a zone CA.
_ca_conf() {  # dir
  cat >"$1/ca.cnf" <<CNF
[ca]
default_ca = CA_default
[CA_default]
dir = $1
database = $1/index.txt
new_certs_dir = $1/newcerts
serial = $1/serial
crlnumber = $1/crlnumber
default_md = sha256
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
[client_ext]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
CNF
  mkdir -p "$1/newcerts"; : >"$1/index.txt"; echo 1000 >"$1/serial"; echo 1000 >"$1/crlnumber"
}

_mk_ca() {  # dir cn [rsa-bits]
  mkdir -p "$1"
  openssl req -x509 -newkey "rsa:${3:-2048}" -nodes -keyout "$1/ca.key" -out "$1/ca.pem" -days 3650 \
    -subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  _ca_conf "$1"
}

_mk_client() {  # cadir name cn [startdate enddate]
  local d=$1 n=$2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pki/$n.key" \
    -out "$T/pki/$n.csr" -subj "/CN=$3" 2>/dev/null
  local dates=(-days 365)
  [[ $# -ge 5 ]] && dates=(-startdate "$4" -enddate "$5")
  openssl ca -batch -config "$d/ca.cnf" -cert "$d/ca.pem" -keyfile "$d/ca.key" -extensions client_ext \
    "${dates[@]}" -in "$T/pki/$n.csr" -out "$T/pki/$n.pem" -notext 2>/dev/null
}

_mk_server() {  # name san-list keytype(ec|rsa)
  local n=$1 kopt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  [[ $3 == rsa ]] && kopt=(-newkey rsa:2048)
  openssl req -new "${kopt[@]}" -nodes -keyout "$T/pki/$n.key" -out "$T/pki/$n.csr" -subj "/CN=${2%%,*}" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$(sed 's/\([^,]*\)/DNS:\1/g' <<<"$2")" >"$T/pki/$n.ext"
  openssl x509 -req -in "$T/pki/$n.csr" -CA "$T/pki/srvca/ca.pem" -CAkey "$T/pki/srvca/ca.key" -CAcreateserial \
    -days 365 -extfile "$T/pki/$n.ext" -out "$T/pki/$n.pem" 2>/dev/null
}

spki_pin() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64; }

gk_pki() {  # the PKI goes to $T/pki, also named $P
  P=$T/pki
  mkdir -p "$T/pki"
  _mk_ca "$T/pki/srvca" "Test Origin CA"
  _mk_ca "$T/pki/global" "Fake origin-pull.cloudflare.net CA" "${GK_GLOBAL_CA_BITS:-2048}"
  _mk_ca "$T/pki/other" "Other zone CA"
  _mk_ca "$T/pki/zone" "Zone AOP CA"
  _mk_server srv-a "a.test" ec
  _mk_server srv-a2 "a.test" ec
  _mk_server srv-b "b.test" ec
  _mk_server srv-rsa "r.test" rsa
  _mk_server srv-misc "z.test,t.test,e.test,o.test,n.test,p.test,w.test,h.test,k.test" ec
  _mk_client "$T/pki/global" edge "origin-pull.cloudflare.net"
  _mk_client "$T/pki/global" revoked "revoked.example"
  _mk_client "$T/pki/global" expired "expired.example" 20200101000000Z 20200201000000Z
  _mk_client "$T/pki/global" future "future.example" 20350101000000Z 20360101000000Z
  _mk_client "$T/pki/other" other "other-zone.example"
  _mk_client "$T/pki/zone" zone "zone.example"
  openssl ca -batch -config "$T/pki/global/ca.cnf" -cert "$T/pki/global/ca.pem" -keyfile "$T/pki/global/ca.key" \
    -revoke "$T/pki/revoked.pem" 2>/dev/null
  openssl ca -batch -config "$T/pki/global/ca.cnf" -cert "$T/pki/global/ca.pem" -keyfile "$T/pki/global/ca.key" \
    -gencrl -out "$T/pki/global.crl" 2>/dev/null
  cat "$T/pki/global/ca.pem" "$T/pki/zone/ca.pem" >"$T/pki/global+zone.pem"
}

# Python upstream (tests/e2e/gatekeeper/upstream.py); sets UP_PORT.
gk_upstream() {  # mode(http|pp2echo|https) [cert key]
  UP_PORT=$(gk_free_port)
  gk_bg "$T/upstream-$1-$UP_PORT.log" python3 "$GK_HERE/upstream.py" "$1" "$UP_PORT" "${@:2}"
  gk_wait_port "$UP_PORT"
}

# Starts the gatekeeper on $T/gk.toml; sets GK_PID.
gk_start() {
  # Never the system's /run/originguard/gatekeeper.sock: a test config without its own
  # control_socket gets one in the temp dir.
  grep -q '^control_socket' "$T/gk.toml" || sed -i "s#^\[gatekeeper\]\$#[gatekeeper]\ncontrol_socket = \"$T/gk.sock\"#" "$T/gk.toml"
  "$GK_BIN" --check-config --config "$T/gk.toml" >"$T/check.log" 2>&1 || { cat "$T/check.log"; return 1; }
  gk_bg "$T/gk.log" "$GK_BIN" ${GK_ARGS:-} --config "$T/gk.toml"
  GK_PID=$LAST_PID
  gk_wait_port "$GK_PORT"
}

# curl through the gatekeeper: gk_curl host path [extra curl args...]; prints "code" (000 on TLS failure).
gk_curl() {
  local host=$1 path=$2; shift 2
  curl -sS -o "$T/body" -w '%{http_code}' --max-time 10 --cacert "$T/pki/srvca/ca.pem" \
    --resolve "$host:$GK_PORT:127.0.0.1" "$@" "https://$host:$GK_PORT$path" 2>"$T/curl.err" || true
}

# Scripted stub upstream (upstream.py stub): logs each request it receives to STUB_LOG.
gk_stub() {  # [cert key]; sets UP_PORT and STUB_LOG
  UP_PORT=$(gk_free_port)
  STUB_LOG=$T/stub-$UP_PORT.jsonl
  : >"$STUB_LOG"
  gk_bg "$T/stub-$UP_PORT.err" python3 "$GK_HERE/upstream.py" stub "$UP_PORT" "$STUB_LOG" "$@"
  gk_wait_port "$UP_PORT"
}

# Waits until the stub has seen connection CONN end (its "closed" record): everything the
# gatekeeper sent on it is in the log. Prints "closed" or "open".
gk_stub_wait_closed() {  # conn [log]
  local _
  for _ in $(seq 1 200); do
    if jq -e --argjson c "$1" 'select(.closed and .conn == $c)' "${2:-$STUB_LOG}" >/dev/null 2>&1; then
      echo closed
      return 0
    fi
    sleep 0.05
  done
  echo open
}
# Lines of the stub log (or file $2) containing TEXT.
gk_count_lines() { grep -c -F -- "$1" "${2:-$STUB_LOG}" || true; }

# One scripted TLS connection through the gatekeeper (httpclient.py): gk_hc SNI [--cert C --key K] STEP...
gk_hc() {
  local sni=$1; shift
  python3 "$GK_HERE/httpclient.py" "$GK_PORT" "$sni" "$T/pki/srvca/ca.pem" "$@" 2>&1 || true
}

# Resident set size of a process in KiB.
gk_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Peak resident set size (high-water mark) in KiB.
gk_hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
