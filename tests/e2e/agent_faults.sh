#!/usr/bin/env bash
# e2e: faults around a running agent (real nftables in a namespace of the test's own, the
# local HTTPS range server). In each case the kernel keeps enforcing what it should — the
# edge sets are compared with the expected ones interval by interval (tests/tools/nft_sets.py)
# — status names the fault by its warning id, and the agent recovers by itself once the
# fault is gone:
#  1. the state directory read-only, then full (ENOSPC on a small tmpfs);
#  2. the export file's directory unwritable, missing and not creatable, deleted;
#  3. the table edited (a rule inserted, an element added) while applies are in flight;
#  4. the range source's TLS certificate expired or issued for another name, and its host
#     name not resolvable: refused, the last good set kept, status says why.
# The file systems are tmpfs mounts in a mount namespace of the test's own, and name
# resolution there is pointed at a resolver that does not exist (nothing leaves the host).
source "$(dirname "$0")/lib.sh"
og_private_mounts "$@"
og_setup faults
[[ -x $AGENT && -x $CTL ]] || { og_log "SKIP: originguard-agent/agentctl not built"; exit 77; }
TOOLS=$OG_ROOT/tests/tools

NS=$(og_netns faults)
# No resolver answers in this mount namespace: every DNS query is refused at once (port 53
# of the namespace's loopback is closed), whatever the host's configuration.
printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' >"$OG_TMP/resolv.conf"
printf 'hosts: files dns\n' >"$OG_TMP/nsswitch.conf"
mount --bind "$OG_TMP/resolv.conf" /etc/resolv.conf
mount --bind "$OG_TMP/nsswitch.conf" /etc/nsswitch.conf

RS=$OG_TMP/rs
og_range_server "$NS" "$RS"
STATE=$OG_TMP/state
EXPORT_DIR=$OG_TMP/export
mkdir -p "$STATE" "$EXPORT_DIR"
mount -t tmpfs -o size=2m,mode=0755 og-state "$STATE"
mount -t tmpfs -o size=2m,mode=0755 og-export "$EXPORT_DIR"
EXPORT=$EXPORT_DIR/run/edge-ranges.json  # run/ does not exist yet: the agent makes it

# ranges N: the test set plus N extra /24s (198.18.2.0/24, 198.18.4.0/24, ...), not adjacent,
# so the kernel holds them as N separate intervals.
ranges() {
  "$OG_PYTHON" - "$1" "$OG_TMP/ranges-$1.json" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
v4 = ["198.51.100.0/24", "192.0.2.0/25"] + [f"198.18.{2 * k}.0/24" for k in range(1, n + 1)]
json.dump({"result": {"ipv4_cidrs": v4, "ipv6_cidrs": ["2001:db8:cf::/48"], "etag": f"step-{n}"},
           "success": True, "errors": [], "messages": []}, open(out, "w"))
PY
  echo "$OG_TMP/ranges-$1.json"
}
serve() { cp "$1" "$RS/ranges.json.tmp" && mv "$RS/ranges.json.tmp" "$RS/ranges.json"; }
STEP=0
serve "$(ranges 0)"

SOCK=$OG_TMP/agent.sock
SOURCE="https://127.0.0.1:$RS_PORT/client/v4/ips"
write_config() {  # [$1 = source URL] [$2 = verify_interval]
  cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["${1:-$SOURCE}"]
ca_file = "$RS/pki/ca.pem"
state_dir = "$STATE"
export_file = "$EXPORT"
connect_timeout = "2s"
total_timeout = "5s"
retry_min = "1h"
max_shrink = 1.0

[protect]
ports = [443]
verify_interval = "${2:-1s}"

[control]
socket = "$SOCK"
TOML
}
write_config

ctl() { ip netns exec "$NS" "$CTL" -s "$SOCK" "$@"; }
st() { og_status "$NS" "$SOCK" "$1" || true; }  # status exits 1 when degraded
status_rc() { local rc=0; ctl status >/dev/null 2>&1 || rc=$?; echo $rc; }
has_warning() { [[ $(st "[.warning_details[]?.id] | index(\"$1\") != null") == true ]]; }
lacks_warning() { ! has_warning "$1"; }
warning_text() { st ".warning_details[] | select(.id == \"$1\") | .text"; }
healthy() { [[ $(status_rc) == 0 ]]; }
kernel() { ip netns exec "$NS" nft -j list table inet originguard 2>/dev/null | "$OG_PYTHON" "$TOOLS/nft_sets.py" kernel; }
# kernel_holds FILE: the kernel's edge sets are exactly the ranges in FILE
kernel_holds() { local k; k=$(kernel) && [[ ${k% shape=*} == "$("$OG_PYTHON" "$TOOLS/nft_sets.py" ranges "$1")" ]]; }
stored_step() { jq -r .etag "$STATE/ranges.json" 2>/dev/null; }
stored_is() { [[ $(stored_step) == "$1" ]]; }
exported_has() { jq -e --arg p "$1" '.ipv4 | index($p) != null' "$EXPORT" >/dev/null 2>&1; }
attacker_dropped() {
  ctl explain 203.0.113.66 443 --json 2>/dev/null | jq -e '.verdict == "drop" and .layer == "nftables"' >/dev/null
}
# next_step: serve one more prefix and refresh; sets CUR (the file now served) and REFRESH_RC
next_step() {
  STEP=$((STEP + 1))
  CUR=$(ranges $STEP)
  serve "$CUR"
  REFRESH_RC=0
  ctl refresh >"$OG_TMP/refresh.out" 2>&1 || REFRESH_RC=$?
}

AGENT_PID=
start_agent() {
  # nsenter, not `ip netns exec`: the agent shares this mount namespace, so a remount or a
  # full file system here is what it sees.
  nsenter --net="/run/netns/$NS" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
  AGENT_PID=$!
  OG_PIDS+=("$AGENT_PID")
  og_wait_for 10 ctl version
}
FAULTS=0  # faults injected (each one also checked for recovery)

start_agent
CUR=$OG_TMP/ranges-0.json
og_check "agent healthy at start" og_wait_for 10 healthy
# Healthy can come before the first refresh has landed (the stored or embedded set is in
# force meanwhile): wait for the served one.
og_check "the kernel holds the served set" og_wait_for 10 kernel_holds "$CUR"
og_check "the export's missing directory was made, the file written" exported_has 198.51.100.0/24

# --- 1. state directory read-only, then full ------------------------------------------------
FAULTS=$((FAULTS + 1))
mount -o remount,ro "$STATE"
next_step
og_check "[state ro] refresh answers ok (the ranges are in force) (exit $REFRESH_RC)" [ "$REFRESH_RC" = 0 ]
og_check "[state ro] the new set is enforced" kernel_holds "$CUR"
og_check "[state ro] attackers still dropped" attacker_dropped
og_check "[state ro] status: store.save_failed" has_warning store.save_failed
og_check "[state ro] ...saying why ($(warning_text store.save_failed))" grep -q "Read-only file system" <<<"$(warning_text store.save_failed)"
og_check "[state ro] status degraded (exit 1)" [ "$(status_rc)" = 1 ]
og_check "[state ro] the last-known-good file still holds the previous set" [ "$(stored_step)" = step-0 ]
mount -o remount,rw "$STATE"
# No refresh is due for an hour: the agent writes the file again on its own.
og_check "[state ro] writable again: the last-known-good is written without a refresh" og_wait_for 10 stored_is step-$STEP
og_check "[state ro] warning cleared, healthy" og_wait_for 5 healthy

FAULTS=$((FAULTS + 1))
dd if=/dev/zero of="$STATE/filler" bs=4k 2>/dev/null || true  # until ENOSPC
og_log "state tmpfs: $(df -h --output=used,size "$STATE" | tail -1)"
next_step
og_check "[state full] refresh answers ok (exit $REFRESH_RC)" [ "$REFRESH_RC" = 0 ]
og_check "[state full] the new set is enforced" kernel_holds "$CUR"
og_check "[state full] attackers still dropped" attacker_dropped
og_check "[state full] status: store.save_failed, No space left on device" \
  grep -q "No space left on device" <<<"$(warning_text store.save_failed)"
og_check "[state full] the last-known-good file is whole and holds the previous set" [ "$(stored_step)" = step-$((STEP - 1)) ]
og_check "[state full] no temp file left behind" [ -z "$(find "$STATE" -name 'ranges.json.tmp.*')" ]
rm "$STATE/filler"
og_check "[state full] space back: the last-known-good is written" og_wait_for 10 stored_is step-$STEP
og_check "[state full] warning cleared, healthy" og_wait_for 5 healthy

# --- 2. the export file's directory ---------------------------------------------------------
FAULTS=$((FAULTS + 1))
mount -o remount,ro "$EXPORT_DIR"
next_step
og_check "[export ro] the new set is enforced" kernel_holds "$CUR"
og_check "[export ro] status: export.failed" has_warning export.failed
og_check "[export ro] ...saying why" grep -q "Read-only file system" <<<"$(warning_text export.failed)"
og_check "[export ro] the old export stays whole" bash -c "jq -e . $EXPORT >/dev/null && ! jq -e '.ipv4 | index(\"198.18.$((2 * STEP)).0/24\")' $EXPORT >/dev/null"
mount -o remount,rw "$EXPORT_DIR"
og_check "[export ro] writable again: the export is rewritten" og_wait_for 10 exported_has "198.18.$((2 * STEP)).0/24"
og_check "[export ro] warning cleared, healthy" og_wait_for 5 healthy

FAULTS=$((FAULTS + 1))
rm -r "$EXPORT_DIR/run"
mount -o remount,ro "$EXPORT_DIR"  # the directory is gone and cannot be made again
next_step
og_check "[export dir missing] the new set is enforced" kernel_holds "$CUR"
og_check "[export dir missing] status: export.failed ($(warning_text export.failed))" has_warning export.failed
mount -o remount,rw "$EXPORT_DIR"
og_check "[export dir missing] directory and file made again" og_wait_for 10 exported_has "198.18.$((2 * STEP)).0/24"
og_check "[export dir missing] warning cleared, healthy" og_wait_for 5 healthy

FAULTS=$((FAULTS + 1))
rm -r "$EXPORT_DIR/run"  # deleted while the agent runs, nothing else changes
og_check "[export dir deleted] the agent writes it again by itself" og_wait_for 10 exported_has "198.18.$((2 * STEP)).0/24"
og_check "[export dir deleted] healthy" og_wait_for 5 healthy

# --- 3. the table edited while applies are in flight -----------------------------------------
FAULTS=$((FAULTS + 1))
"$OG_PYTHON" "$TOOLS/gen_ranges.py" 20000 11 "$OG_TMP/big-A.json"
"$OG_PYTHON" "$TOOLS/gen_ranges.py" 20000 12 "$OG_TMP/big-B.json"
# Periodic verify off: the repairs below come from the applies themselves and from the
# verify after a refresh, so the last edit is still there to be seen in status.
write_config "$SOURCE" 1h
ctl reload >/dev/null 2>&1 || og_fail "reload with verify_interval 1h"
serve "$OG_TMP/big-A.json"
ctl refresh >/dev/null 2>&1 || og_fail "refresh to 20000 prefixes"
og_check "[table edited] 20000 prefixes in force" kernel_holds "$OG_TMP/big-A.json"
SHAPE=$(kernel); SHAPE=${SHAPE##* }
repairs0=$(st .enforcers.nftables.drift_repairs)
# The editor, one `nft -i` fed from here (no process start per edit): an accept rule in
# front of the agent's, an attacker's prefix in the management set, the IPv6 edge set
# flushed; again and again, and once more after it is told to stop.
edits() {
  printf '%s\n' 'insert rule inet originguard input tcp dport 443 accept comment "intruder"' \
    'add element inet originguard mgmt_v4 { 203.0.113.0/24 }' 'flush set inet originguard edge_v6'
}
(
  n=0
  while [[ ! -e $OG_TMP/stop-editor ]]; do
    edits
    n=$((n + 1))
    sleep 0.02  # paces the writer: nft would otherwise work through a backlog after the stop
  done
  edits
  echo $((n + 1)) >"$OG_TMP/edits"
) | ip netns exec "$NS" nft -i >/dev/null 2>&1 &
EDITOR=$!
OG_PIDS+=("$EDITOR")
refresh_rcs=
for s in B A B A B; do
  serve "$OG_TMP/big-$s.json"
  rc=0
  ctl refresh >/dev/null 2>&1 || rc=$?
  refresh_rcs+="$rc"
done
touch "$OG_TMP/stop-editor"
wait "$EDITOR" || true
og_log "[table edited] $(cat "$OG_TMP/edits") rounds of 3 edits during 5 replacements of 20000 prefixes"
og_check "[table edited] every apply committed (refresh exits $refresh_rcs)" [ "$refresh_rcs" = 00000 ]
og_check "[table edited] the last edit is seen: status names nftables.table_modified" has_warning nftables.table_modified
og_check "[table edited] ...and is degraded" [ "$(status_rc)" = 1 ]
ctl refresh >/dev/null 2>&1 || og_fail "refresh (304) that runs a verify"
og_check "[table edited] repaired: exactly the served set" kernel_holds "$OG_TMP/big-B.json"
og_check "[table edited] repaired: chains, rules and other sets as applied" [ "$(kernel | awk '{print $3}')" = "$SHAPE" ]
og_check "[table edited] the intruder rule is gone" bash -c "! ip netns exec $NS nft list chain inet originguard input | grep -q intruder"
og_check "[table edited] the attacker is out of the management set" \
  bash -c "! ip netns exec $NS nft get element inet originguard mgmt_v4 '{ 203.0.113.66 }'"
og_check "[table edited] the repair is counted, with its reason" [ "$(st ".enforcers.nftables.drift_repairs > $repairs0 and (.enforcers.nftables.last_drift.reasons | length > 0)")" = true ]
og_check "[table edited] attackers dropped again" attacker_dropped
og_check "[table edited] healthy ($(st '[.warning_details[] | select(.needs_action) | .id] | join(",")'))" og_wait_for 5 healthy
STEP=0
CUR=$(ranges 0)
serve "$CUR"
write_config
ctl reload >/dev/null 2>&1 || og_fail "reload back to verify_interval 1s"
ctl refresh >/dev/null 2>&1 || og_fail "refresh back to the small set"
og_check "back to the small set" kernel_holds "$CUR"

# --- 4. the range source: bad certificates, no DNS --------------------------------------------
PKI=$RS/pki
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$PKI/bad.key" -out "$PKI/bad.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$PKI/good-name.cnf"
printf 'subjectAltName=DNS:ranges.example.net\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$PKI/wrong-name.cnf"
cat >"$PKI/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $PKI/index.txt
new_certs_dir = $PKI
serial = $PKI/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
CNF
: >"$PKI/index.txt"
echo 1000 >"$PKI/serial"
openssl ca -batch -config "$PKI/ca.cnf" -cert "$PKI/ca.pem" -keyfile "$PKI/ca.key" -notext \
  -startdate 20200101000000Z -enddate 20200201000000Z -extfile "$PKI/good-name.cnf" \
  -in "$PKI/bad.csr" -out "$PKI/expired.pem" 2>/dev/null
openssl x509 -req -in "$PKI/bad.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 \
  -extfile "$PKI/wrong-name.cnf" -out "$PKI/wrong-name.pem" 2>/dev/null
# bad_server NAME CERT: another range server (same answers) presenting CERT; sets BAD_PORT
bad_server() {
  local d=$OG_TMP/rs-$1
  mkdir -p "$d"
  ln -s "$RS/ranges.json" "$d/ranges.json"
  og_bg ip netns exec "$NS" "$OG_PYTHON" "$TOOLS/range_server.py" --dir "$d" --cert "$2" --key "$PKI/bad.key"
  og_wait_for 10 test -s "$d/port" || og_fail "range server $1 did not start"
  BAD_PORT=$(cat "$d/port")
}
kernel_holds_and_healthy() { kernel_holds "$1" && healthy; }
# refused NAME URL ERROR_REGEX: the agent refuses the source, keeps the last good set
refused() {
  local name=$1 url=$2 want=$3 rc=0
  FAULTS=$((FAULTS + 1))
  STEP=$((STEP + 1))
  CUR=$(ranges $STEP)
  serve "$CUR"  # a different set is served: taking it would show
  write_config "$url"
  ctl reload >/dev/null 2>&1 || og_fail "[$name] reload"
  ctl refresh >"$OG_TMP/refresh.out" 2>&1 || rc=$?
  og_check "[$name] refresh refused (exit $rc)" [ "$rc" = 1 ]
  og_check "[$name] last_error says why ($(st .ranges.last_error))" grep -Eqi "$want" <<<"$(st .ranges.last_error)"
  og_check "[$name] status: refresh.failed" has_warning refresh.failed
  og_check "[$name] status degraded (exit 1)" [ "$(status_rc)" = 1 ]
  og_check "[$name] the last good set stays in the kernel" kernel_holds "$GOOD"
  og_check "[$name] ...and in the last-known-good file" [ "$(stored_step)" = "$(jq -r .result.etag "$GOOD")" ]
  og_check "[$name] attackers still dropped" attacker_dropped
  write_config
  ctl reload >/dev/null 2>&1 || og_fail "[$name] reload back"
  ctl refresh >/dev/null 2>&1 || og_fail "[$name] refresh from the good source"
  og_check "[$name] the good source again: the served set in force, healthy" kernel_holds_and_healthy "$CUR"
  GOOD=$CUR
}
GOOD=$CUR
bad_server expired "$PKI/expired.pem"
refused "tls expired" "https://127.0.0.1:$BAD_PORT/client/v4/ips" "certificate has expired"
bad_server wrong-name "$PKI/wrong-name.pem"
refused "tls wrong name" "https://127.0.0.1:$BAD_PORT/client/v4/ips" "no alternative certificate subject name matches|does not match"
refused "dns failure" "https://ranges.invalid:$RS_PORT/client/v4/ips" "resolve"

og_log "faults injected and survived: $FAULTS"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_finish
