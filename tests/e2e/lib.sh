# Shared helpers for originguard's e2e tests (bash). Source it, then call og_setup.
# Every test runs in network namespaces it creates and removes them on exit, even on failure;
# processes it starts are killed by PID. Never touches the host's ruleset or interfaces.
set -euo pipefail

OG_ROOT=${OG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
OG_BUILD=${OG_BUILD:?OG_BUILD must point at the build directory}
OG_TEST_DATA=${OG_TEST_DATA:-$OG_ROOT/tests/data}
AGENT=$OG_BUILD/originguard-agent
CTL=$OG_BUILD/agentctl
# Debian's interpreter (what scripts/install-deps.sh provides), not whatever python3 comes
# first on an interactive PATH: a pyenv shim costs ~1 s per start, and a kill -9 round
# starts python several times.
OG_PYTHON=/usr/bin/python3
[[ -x $OG_PYTHON ]] || OG_PYTHON=python3

OG_NETNS=()
OG_PIDS=()
OG_TMP=
OG_FAILS=0
OG_PASSES=0

og_log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

og_cleanup() {
  local pid ns
  for pid in "${OG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${OG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # og_netns is usually called as NS=$(og_netns x), in a subshell whose OG_NETNS+= is lost;
  # its names end in -$$ ($$ is the test's PID even in subshells), so find them by name.
  local -a all=("${OG_NETNS[@]}")
  mapfile -t -O "${#all[@]}" all < <(ip netns list 2>/dev/null | awk '{print $1}' | grep -E -- "^og-.*-$$\$" || true)
  for ns in "${all[@]}"; do
    # processes left in the namespace (a daemon that forked) are killed before it goes
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  # mounts a test made under its scratch dir (og_private_mounts: only in its own namespace)
  if [[ -n $OG_TMP ]]; then
    local m
    for m in $(awk -v d="$OG_TMP/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  if [[ -n $OG_TMP && -z ${OG_KEEP_TMP:-} ]]; then rm -rf "$OG_TMP"; fi
}

# og_private_mounts ARGS...: re-runs the calling test in a mount namespace of its own, so the
# file systems it mounts (a small tmpfs to fill, one to make read-only) and its bind mounts
# over /etc exist only there and go with it, even after a kill -9. Call before og_setup.
og_private_mounts() {
  [[ $(id -u) -eq 0 ]] || { echo "SKIP: e2e tests need root"; exit 77; }
  [[ -n ${OG_PRIVATE_MOUNTS:-} ]] && return 0
  OG_PRIVATE_MOUNTS=1 exec unshare --mount --propagation private bash "$0" "$@"
}

# og_setup NAME: scratch dir in $OG_TMP, cleanup trap.
og_setup() {
  [[ $(id -u) -eq 0 ]] || { echo "SKIP: e2e tests need root"; exit 77; }
  OG_TMP=$(mktemp -d "/tmp/og-e2e-$1.XXXXXX")
  # agentctl also asks a gatekeeper when its socket exists: none here, whatever runs on the host.
  export ORIGINGUARD_GATEKEEPER_SOCKET=$OG_TMP/no-gatekeeper.sock
  trap og_cleanup EXIT
  trap 'exit 130' INT TERM
}

# og_netns NAME -> creates namespace og-<NAME>-<pid> with lo up, echoes its name.
og_netns() {
  local ns="og-$1-$$"
  ip netns add "$ns"
  OG_NETNS+=("$ns")
  ip -n "$ns" link set lo up
  echo "$ns"
}

# og_veth NS_A ADDR_A NS_B ADDR_B [ADDR6_A ADDR6_B]: veth pair between two namespaces.
og_veth() {
  local a=$1 aa=$2 b=$3 ba=$4 a6=${5:-} b6=${6:-}
  local ia="v${RANDOM}a" ib="v${RANDOM}b"
  ip link add "$ia" netns "$a" type veth peer name "$ib" netns "$b"
  ip -n "$a" addr add "$aa" dev "$ia"
  ip -n "$b" addr add "$ba" dev "$ib"
  if [[ -n $a6 ]]; then
    ip -n "$a" addr add "$a6" dev "$ia" nodad
    ip -n "$b" addr add "$b6" dev "$ib" nodad
  fi
  ip -n "$a" link set "$ia" up
  ip -n "$b" link set "$ib" up
  echo "$ia $ib"
}

# The end of an agent's TOML for a test that needs neither kernel enforcer: the control socket,
# nftables and XDP off. Use inside a heredoc: $(og_toml_no_kernel "$SOCK").
og_toml_no_kernel() {  # socket
  printf '[control]\nsocket = "%s"\n\n[nftables]\nenabled = false\n\n[xdp]\nenabled = false\n' "$1"
}

og_bg() { "$@" & OG_PIDS+=($!); }

# og_wait_for SECONDS CMD...: retries CMD every 0.1 s.
og_wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

og_pass() { OG_PASSES=$((OG_PASSES + 1)); og_log "PASS: $*"; }
og_fail() { OG_FAILS=$((OG_FAILS + 1)); og_log "FAIL: $*"; }

# og_check DESC CMD...: records pass/fail of CMD without stopping the test.
og_check() {
  local desc=$1; shift
  if "$@" >/dev/null 2>&1; then og_pass "$desc"; else og_fail "$desc"; fi
}

og_finish() {
  og_log "$OG_PASSES passed, $OG_FAILS failed"
  [[ $OG_FAILS -eq 0 ]]
}

# og_test_pki DIR: a throw-away CA and a server certificate for 127.0.0.1 / localhost.
og_test_pki() {
  local d=$1
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=originguard test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
}

# og_range_server NS DIR [MAX_SECONDS]: starts tests/tools/range_server.py inside NS; sets
# RS_PORT. The server exits by itself after MAX_SECONDS (default 900), a bound for the case
# where the cleanup never ran; a test that may run longer (the kill -9 long form) passes its own.
og_range_server() {
  local ns=$1 d=$2 max=${3:-900}
  mkdir -p "$d"
  og_test_pki "$d/pki"
  rm -f "$d/port"
  og_bg ip netns exec "$ns" "$OG_PYTHON" "$OG_ROOT/tests/tools/range_server.py" --dir "$d" \
    --cert "$d/pki/server.pem" --key "$d/pki/server.key" --max-seconds "$max"
  # Generous: Python took 20 s to start at nice 19 on the loaded 2-core machine.
  og_wait_for 30 test -s "$d/port" || { og_log "range server did not start"; return 1; }
  RS_PORT=$(cat "$d/port")
}

# jq over `agentctl status --json` in a namespace: og_status NS SOCKET FILTER
og_status() { ip netns exec "$1" "$CTL" -s "$2" status --json 2>/dev/null | jq -r "$3"; }
