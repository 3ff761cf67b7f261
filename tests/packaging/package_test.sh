#!/usr/bin/env bash
# e2e (root): the .deb as a user meets it. Builds the package from the build tree (cpack),
# checks it with lintian, then installs it into a throw-away copy of this very system (an
# overlay on /, in a private mount namespace) booted with systemd-nspawn in its own network
# namespace, so that dpkg, the maintainer scripts and the hardened units run for real, under
# real systemd, and nothing reaches the host:
#   1. dpkg -i a previous build (this package repacked as 0.0.9, with a file since dropped);
#   2. files, conffiles, the user, the units (systemd-analyze verify), man pages, completion;
#   3. --check-config on the shipped configs, as the units' ExecStartPre run it;
#   4. the agent started by systemd, with an operator's edit in its conffile; upgrade to this
#      build: the edit is kept, the running agent restarted, its table kept in the kernel;
#   5. both daemons under their units: sandbox in force (capabilities, seccomp, read-only
#      system), nftables table, control socket, gatekeeper on :443 as its own user, metrics;
#      the [realip] recipe of docs/DEPLOYMENT.md (drop-in, file written, on_change reloads),
#      [metrics] listen scraped with curl;
#   6. dpkg --purge: units stopped, nothing left in the kernel, no file left behind (the
#      overlay's upper layer is compared with its state before the install), the system
#      user kept as Debian policy advises.
# Cleanup is the namespaces' end: the container, its network and the overlay vanish with the
# test, even when it fails. Exit 77 (skipped) without root.
#   OG_BUILD=build bash tests/packaging/package_test.sh      (OG_KEEP_TMP=1 keeps logs)
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "SKIP: the package test needs root"; exit 77; }
OG_BUILD=$(cd "${OG_BUILD:?OG_BUILD must point at the build directory}" && pwd)
OG_ROOT=${OG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# Everything below runs in a private mount namespace: the overlay, its tmpfs and the
# container's mounts disappear with this process.
if [[ -z ${OG_PKG_INNER:-} ]]; then
  export OG_PKG_INNER=1 OG_BUILD OG_ROOT
  exec unshare --mount --propagation private bash "${BASH_SOURCE[0]}" "$@"
fi

TMP=$(mktemp -d /tmp/og-package.XXXXXX)
NSPAWN_PID='' LEADER=''
fails=0 passes=0
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
ok() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
check() {  # DESCRIPTION COMMAND...: passes when COMMAND does; its output is shown on failure
  local out
  if out=$("${@:2}" 2>&1); then ok "$1"; else
    fail "$1"
    [[ -z $out ]] || sed 's/^/    /' <<<"$out"
  fi
}
not() { ! "$@"; }
matches() { grep -Eq "$1" <<<"$2"; }  # ERE TEXT

cleanup() {
  local rc=$?
  if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    kill -TERM "$NSPAWN_PID" 2>/dev/null || true  # nspawn asks the container's systemd to halt
    for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    wait "$NSPAWN_PID" 2>/dev/null || true
  fi
  if [[ -n ${OG_KEEP_TMP:-} ]]; then
    mkdir -p "/tmp/og-package-logs"
    cp -a "$TMP"/*.log "$TMP"/cpack/*.deb "/tmp/og-package-logs/" 2>/dev/null || true
    echo "logs kept in /tmp/og-package-logs" >&2
  fi
  umount -R "$TMP/ovl" 2>/dev/null || umount -l "$TMP/ovl" 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build the package from this build tree -----------------------------------------------
log "cpack"
cpack -G DEB -B "$TMP/cpack" --config "$OG_BUILD/CPackConfig.cmake" >"$TMP/cpack.log" 2>&1 ||
  { tail -20 "$TMP/cpack.log"; echo "FAIL: cpack"; exit 1; }
DEB=$(ls "$TMP"/cpack/originguard_*_amd64.deb)
DDEB=$(ls "$TMP"/cpack/originguard-dbgsym_*_amd64.ddeb)
VERSION=$(dpkg-deb -f "$DEB" Version)
ok "cpack made $(basename "$DEB") ($(($(stat -c %s "$DEB") / 1024)) KiB) and $(basename "$DDEB")"
check "Section net" test "$(dpkg-deb -f "$DEB" Section)" = net
check "the .deb is small (stripped): $(($(stat -c %s "$DEB") / 1024)) KiB < 4 MiB" test "$(stat -c %s "$DEB")" -lt $((4 << 20))

log "lintian"
if lintian --fail-on error,warning --display-info "$DEB" >"$TMP/lintian.log" 2>&1; then
  ok "lintian: no error or warning ($(grep -c '^I:' "$TMP/lintian.log" || true) info tags; overrides documented)"
else
  fail "lintian"
  sed 's/^/    /' "$TMP/lintian.log"
fi

# The previous build: this package as version 0.0.9, shipping a file this version dropped.
dpkg-deb -R "$DEB" "$TMP/prev"
sed -i "s/^Version: .*/Version: 0.0.9/" "$TMP/prev/DEBIAN/control"
echo "dropped in 0.1.0" >"$TMP/prev/usr/share/doc/originguard/OBSOLETE"
(cd "$TMP/prev" && md5sum usr/share/doc/originguard/OBSOLETE >>DEBIAN/md5sums)
dpkg-deb --root-owner-group -b "$TMP/prev" "$TMP/originguard_0.0.9_amd64.deb" >/dev/null
PREV=$TMP/originguard_0.0.9_amd64.deb

# ---- a throw-away copy of this system, booted -----------------------------------------------
mkdir -p "$TMP/ovl"
mount -t tmpfs -o size=2g og-package "$TMP/ovl"
mkdir "$TMP/ovl/upper" "$TMP/ovl/work" "$TMP/ovl/root"
mount -t overlay og-package -o "lowerdir=/,upperdir=$TMP/ovl/upper,workdir=$TMP/ovl/work" "$TMP/ovl/root"
R=$TMP/ovl/root
UPPER=$TMP/ovl/upper
systemd-id128 new >"$R/etc/machine-id"
# A real system has no policy-rc.d; this image's (a container build's "start nothing") would
# keep the maintainer scripts from stopping and restarting the units.
rm -f "$R/usr/sbin/policy-rc.d"
# Nothing of the host's own services: the container boots to sysinit.target only.
mkdir -p "$R/var/tmp/og-package"
cp "$DEB" "$DDEB" "$PREV" "$R/var/tmp/og-package/"
# A package of the host left installed would make this test meaningless.
if [[ -e $R/var/lib/dpkg/info/originguard.list ]]; then
  echo "FAIL: originguard is installed on this system; the test needs a system without it"
  exit 1
fi

log "booting the container"
# bpf(): nspawn's own seccomp filter refuses it whatever the capabilities (EPERM for any
# process in the container), so the agent could not load XDP under its unit; allowed here as
# on a real host, where the unit's filter (@system-service bpf) is what applies.
systemd-nspawn --quiet --directory="$R" --register=no --keep-unit --link-journal=no \
  --private-network --console=passive --capability=CAP_BPF --system-call-filter=bpf --boot -- --unit=sysinit.target \
  >"$TMP/nspawn.log" 2>&1 &
NSPAWN_PID=$!

IN() {  # runs a command in the container (its namespaces, its root, a clean environment)
  nsenter --target "$LEADER" --all --root --wd \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 NO_COLOR=1 TERM=dumb "$@"
}
wait_for() {  # SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
booted() {
  LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1) || return 1
  [[ -n $LEADER ]] || return 1
  local s
  s=$(IN systemctl is-system-running 2>/dev/null) || true
  [[ $s == running || $s == degraded ]]
}
if ! wait_for 90 booted; then
  tail -30 "$TMP/nspawn.log"
  echo "FAIL: the container did not boot"
  exit 1
fi
ok "container booted (systemd $(IN systemctl --version | head -1 | awk '{print $2}'), own network namespace"
check "the container's network is its own (lo only)" test "$(IN ip -o link show | wc -l)" -eq 1

# systemd mounts bpffs at boot on a real host, not in a container (nspawn's /sys is a
# read-only tmpfs without fs/bpf): a fresh instance of the container's own, where the agent's
# XDP pins would live; it goes with the container.
IN sh -ec 'mount -o remount,rw /sys; mkdir -p /sys/fs/bpf; mount -o remount,ro /sys
  mount -t bpf -o mode=0700 bpf /sys/fs/bpf' || fail "mount bpffs in the container"

snapshot() { (cd "$UPPER" && find . -mindepth 1 -printf '%P\n' | sort); }
snapshot >"$TMP/upper.before"

# ---- 1. install the previous build -----------------------------------------------------------
log "dpkg -i (previous build 0.0.9)"
if IN dpkg -i /var/tmp/og-package/originguard_0.0.9_amd64.deb >"$TMP/dpkg-prev.log" 2>&1; then
  ok "dpkg -i originguard 0.0.9"
else
  fail "dpkg -i originguard 0.0.9"
  sed 's/^/    /' "$TMP/dpkg-prev.log"
fi
check "nothing enabled or started on install" \
  test "$(IN systemctl is-enabled originguard-agent.service 2>/dev/null)" = disabled
check "agent not running after install" not IN systemctl -q is-active originguard-agent.service

# ---- 2. the operator edits a conffile and starts the agent -------------------------------
# The group of the control socket: the agent chowns it (CAP_CHOWN in the unit's bounding set).
IN sed -i 's/^group = ""  .*/group = "adm"                  # edited by the operator/' /etc/originguard/agent.toml
check "conffile edited" IN grep -q '^group = "adm".*edited by the operator' /etc/originguard/agent.toml
IN systemctl start originguard-agent.service || true
agent_active() { IN systemctl -q is-active originguard-agent.service; }
table_present() { IN nft list table inet originguard; }
check "agent 0.0.9 started by systemd" wait_for 30 agent_active
check "agent 0.0.9 put table inet originguard in the container's kernel" wait_for 30 table_present
run_before=$(IN systemctl show -p InvocationID --value originguard-agent.service)

# ---- 3. upgrade ---------------------------------------------------------------------------
log "dpkg -i (upgrade to $VERSION)"
if IN dpkg -i "/var/tmp/og-package/$(basename "$DEB")" >"$TMP/dpkg-upgrade.log" 2>&1; then
  ok "dpkg -i originguard $VERSION over 0.0.9"
else
  fail "dpkg -i originguard $VERSION over 0.0.9"
  sed 's/^/    /' "$TMP/dpkg-upgrade.log"
fi
check "version $VERSION installed" test "$(IN dpkg-query -W -f='${Version}' originguard)" = "$VERSION"
check "the edited conffile is kept" IN grep -q '^group = "adm".*edited by the operator' /etc/originguard/agent.toml
check "no .dpkg-dist/.dpkg-new/.dpkg-old beside the conffiles" \
  test -z "$(IN find /etc/originguard -name '*.dpkg-*')"
check "dpkg asked nothing about the kept conffile" not grep -q 'Configuration file' "$TMP/dpkg-upgrade.log"
check "a file the new version dropped is gone" not IN test -e /usr/share/doc/originguard/OBSOLETE
restarted() {  # a new run of the unit (systemd's invocation id), active
  local r
  r=$(IN systemctl show -p InvocationID --value originguard-agent.service)
  [[ -n $run_before && -n $r && $r != "$run_before" ]] && agent_active
}
check "the running agent was restarted by the upgrade (try-restart: a new invocation)" wait_for 30 restarted
check "table inet originguard still in the kernel after the upgrade" table_present

log "dpkg -i dbgsym"
check "dpkg -i originguard-dbgsym" IN dpkg -i "/var/tmp/og-package/$(basename "$DDEB")"

# ---- 4. files, conffiles, user, units, man pages -------------------------------------------
files=$(IN dpkg -L originguard)
for f in /usr/sbin/originguard-agent /usr/sbin/originguard-gatekeeper /usr/bin/agentctl \
  /usr/libexec/originguard/originguard-fetch /etc/originguard/agent.toml /etc/originguard/gatekeeper.toml \
  /usr/lib/systemd/system/originguard-agent.service /usr/lib/systemd/system/originguard-gatekeeper.service \
  /usr/lib/systemd/system/originguard-gatekeeper.socket /usr/lib/systemd/system/originguard-gatekeeper-control.socket \
  /usr/lib/sysusers.d/originguard.conf /usr/share/bash-completion/completions/agentctl \
  /usr/share/doc/originguard/copyright /usr/share/doc/originguard/changelog.gz /usr/share/doc/originguard/README.md \
  /usr/share/doc/originguard/CONFIG.md /usr/share/doc/originguard/GATEKEEPER.md \
  /usr/share/lintian/overrides/originguard \
  /usr/share/man/man8/originguard-agent.8.gz /usr/share/man/man8/originguard-gatekeeper.8.gz \
  /usr/share/man/man8/agentctl.8.gz /usr/share/man/man5/originguard-agent.toml.5.gz \
  /usr/share/man/man5/originguard-gatekeeper.toml.5.gz; do
  check "installed: $f" grep -qx "$f" <<<"$files"
done
check "conffiles: /etc/originguard/agent.toml and gatekeeper.toml" \
  test "$(IN dpkg-query -W -f='${Conffiles}\n' originguard | awk 'NF {print $1}' | sort | tr '\n' ' ')" = \
  "/etc/originguard/agent.toml /etc/originguard/gatekeeper.toml "
for page in originguard-agent agentctl originguard-gatekeeper originguard-agent.toml originguard-gatekeeper.toml; do
  check "man $page finds the installed page" IN man -w "$page"
done
check "bash completion loads and completes 'agentctl st' to status" \
  test "$(IN bash -c 'source /usr/share/bash-completion/completions/agentctl; COMP_WORDS=(agentctl st); COMP_CWORD=1; _agentctl; echo "${COMPREPLY[*]}"')" = status
passwd=$(IN getent passwd originguard-gk || true)
uid=$(cut -d: -f3 <<<"$passwd")
check "user originguard-gk: system uid, no login shell, no home ($passwd)" \
  matches '^originguard-gk:x:[0-9]+:[0-9]+:[^:]*:/nonexistent:/usr/sbin/nologin$' "$passwd"
check "user originguard-gk has a system uid ($uid < 1000)" test "${uid:-1000}" -lt 1000
check "group originguard-gk exists" IN getent group originguard-gk
# The agent's HTTP(S) runs in its unprivileged helper (docs/SECURITY.md): no libcurl in it.
check "originguard-agent does not link libcurl" not matches libcurl "$(IN readelf -d /usr/sbin/originguard-agent)"
for b in /usr/sbin/originguard-agent /usr/sbin/originguard-gatekeeper /usr/bin/agentctl \
  /usr/libexec/originguard/originguard-fetch; do
  check "$b is stripped (no .debug_info)" not matches debug_info "$(IN readelf -S "$b")"
  id=$(IN readelf -n "$b" | awk '/Build ID/ {print $3}')
  check "$b: its debug symbols are in originguard-dbgsym (build-id $id)" \
    IN test -s "/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
done
units=(/usr/lib/systemd/system/originguard-agent.service /usr/lib/systemd/system/originguard-gatekeeper.service
  /usr/lib/systemd/system/originguard-gatekeeper.socket /usr/lib/systemd/system/originguard-gatekeeper-control.socket)
if out=$(IN systemd-analyze verify "${units[@]}" 2>&1) && [[ -z $out ]]; then
  ok "systemd-analyze verify: the four units, no complaint"
else
  fail "systemd-analyze verify"
  sed 's/^/    /' <<<"$out"
fi

# ---- 5. the shipped configs, as the units check them ----------------------------------------
check "ExecStartPre of originguard-agent.service passes on the shipped agent.toml" \
  IN originguard-agent --check-config --config /etc/originguard/agent.toml
out=$(IN originguard-gatekeeper --check-config --config /etc/originguard/gatekeeper.toml 2>&1) && rc=0 || rc=$?
check "the shipped gatekeeper.toml is refused until its certificates exist (rc $rc)" test "$rc" = 1
check "... naming the missing file: $out" matches '/etc/originguard/tls/.*No such file' "$out"
# The operator's certificates, where the shipped config expects them: an origin certificate
# (ECDSA and RSA), a key readable by the gatekeeper's group only, the zone's origin-pull CA.
IN bash -ec '
  d=/etc/originguard/tls; mkdir -p $d; cd $d
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj "/CN=test zone CA" \
    -keyout zone-aop-ca.key -out zone-aop-ca.pem 2>/dev/null
  for k in ecdsa rsa; do
    if [ $k = ecdsa ]; then alg="-newkey ec -pkeyopt ec_paramgen_curve:P-256"; else alg="-newkey rsa:2048"; fi
    openssl req -x509 $alg -nodes -days 90 -subj "/CN=www.example.com" -addext "subjectAltName=DNS:www.example.com,DNS:example.com" \
      -keyout origin-$k.key -out origin-$k.pem 2>/dev/null
  done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj "/CN=api.example.com" \
    -addext "subjectAltName=DNS:*.api.example.com" -keyout api.key -out api.pem 2>/dev/null
  chgrp originguard-gk *.key; chmod 0640 *.key'
check "ExecStartPre of originguard-gatekeeper.service passes once the certificates exist" \
  IN originguard-gatekeeper --check-config --config /etc/originguard/gatekeeper.toml

# ---- 6. the daemons under their units ------------------------------------------------------
apid=$(IN systemctl show -p MainPID --value originguard-agent.service)
status=$(IN agentctl status --json 2>/dev/null || true)
check "agentctl status: nftables table present" \
  test "$(jq -r '.enforcers.nftables.table_present' <<<"$status")" = true
check "agentctl status: embedded ranges in force (no network in the container)" \
  test "$(jq -r '.ranges.ipv4 > 0 and .ranges.ipv6 > 0' <<<"$status")" = true
check "control socket given to group adm (CAP_CHOWN in the sandbox)" \
  test "$(IN stat -c '%G %a' /run/originguard/agent.sock)" = "adm 660"
# The first refresh ran through originguard-fetch under the unit's sandbox: it must have got as
# far as the network (none here), i.e. past its privilege drop to nobody, which the unit's
# capability bounding set and system-call filter have to allow.
lerr=
for _ in $(seq 1 150); do
  lerr=$(IN agentctl status --json 2>/dev/null | jq -r '.ranges.last_error // empty' 2>/dev/null || true)
  [[ -n $lerr ]] && break
  sleep 0.2
done
check "the fetch helper ran under the unit and reached the network step ($lerr)" \
  bash -c '[[ -n $1 && $1 != *"fetch helper"* && $1 != *privilege* && $1 != *capabilit* ]]' _ "$lerr"
caps=$(IN awk '/^CapBnd/ {print $2}' "/proc/$apid/status" || true)
# CAP_CHOWN 0, CAP_SETGID 6, CAP_SETUID 7 (originguard-fetch's drop to nobody), CAP_NET_ADMIN 12,
# CAP_SYS_ADMIN 21, CAP_BPF 39
check "agent's capability bounding set = CHOWN SETGID SETUID NET_ADMIN SYS_ADMIN BPF ($caps)" \
  test "$caps" = "$(printf '%016x' $(((1 << 0) | (1 << 6) | (1 << 7) | (1 << 12) | (1 << 21) | (1 << 39))))"
check "agent runs under a seccomp filter with no_new_privs" \
  IN grep -Pzq 'NoNewPrivs:\t1\nSeccomp:\t2' "/proc/$apid/status"
check "agent sees / read-only (ProtectSystem=strict)" matches '^ro' "$(IN findmnt -N "$apid" -no OPTIONS /)"
check "agent's state directory is writable" matches '^rw' "$(IN findmnt -N "$apid" -no OPTIONS -T /var/lib/originguard)"
# XDP pins: bpffs stays writable for the agent under ProtectSystem/ProtectKernelTunables.
bpffs=$(IN findmnt -N "$apid" -no FSTYPE,OPTIONS /sys/fs/bpf || true)
check "agent's /sys/fs/bpf is a writable bpffs ($bpffs)" matches '^bpf +rw' "$bpffs"
check "agent cannot see the kernel tunables (/proc/sys)" not IN nsenter --target "$apid" --mount test -e /proc/sys/kernel
check "agent's /sys is read-only" matches '^ro' "$(IN findmnt -N "$apid" -no OPTIONS -T /sys/class)"
# XDP under the unit's sandbox: bpf() allowed, the program loaded and its maps pinned in the
# bpffs at /sys/fs/bpf (the test mounted it; systemd does on a host; the unit may not mount()).
# The container has no default route, so "auto"
# attaches nowhere, but a generation is loaded all the same.
xdp_loaded() { [[ $(IN agentctl --gatekeeper-socket /nonexistent status --json 2>/dev/null |
  jq -r '.enforcers.xdp | "\(.state) \(.program.id != null)"') == "enforcing true" ]]; }
check "XDP program loaded by the agent inside the sandbox" wait_for 15 xdp_loaded
xdp_loaded || log "xdp log: $(IN journalctl -u originguard-agent.service --no-pager -o cat | grep -i -m 10 'libbpf\|xdp')
xdp: $(IN agentctl --gatekeeper-socket /nonexistent status --json 2>/dev/null | jq -c '{xdp: .enforcers.xdp | {state, program, last_error, warnings}, w: .warning_details}')"
check "XDP counters pinned under /sys/fs/bpf/originguard" IN test -e /sys/fs/bpf/originguard/counters
check "the agent exported the ranges in force for the gatekeeper" IN test -s /run/originguard/edge-ranges.json
check "agentctl reload: the agent re-reads its config inside the sandbox" IN agentctl --gatekeeper-socket /nonexistent reload
IN systemctl start originguard-gatekeeper.service || true
gk_active() { IN systemctl -q is-active originguard-gatekeeper.service; }
check "gatekeeper started by systemd (with its control socket unit)" wait_for 30 gk_active
gpid=$(IN systemctl show -p MainPID --value originguard-gatekeeper.service)
check "gatekeeper runs as originguard-gk" test "$(IN ps -o user= -p "$gpid")" = originguard-gk
listening() { IN ss -Hltn 'sport = :443' | grep -q .; }
check "gatekeeper listens on :443 (CAP_NET_BIND_SERVICE, no root)" wait_for 15 listening
gk_answers() { IN agentctl gatekeeper status; }
check "agentctl gatekeeper status answers over the control socket" wait_for 15 gk_answers
# require_edge_ip = true in the shipped config: loopback is not an edge address, so the
# handshake is refused; a TLS alert (curl 35), not a refused connection (7), shows it serving.
rc=0
IN curl -sS -o /dev/null --max-time 5 --resolve www.example.com:443:127.0.0.1 -k https://www.example.com/ 2>/dev/null || rc=$?
check "a TLS client from a non-edge address is refused in the handshake (curl exit $rc)" test "$rc" = 35
# the agent's text alone (agentctl metrics appends the gatekeeper's when its socket exists)
IN agentctl --gatekeeper-socket /nonexistent metrics >"$TMP/agent-metrics.txt" 2>"$TMP/agent-metrics.err" || true
check "agentctl metrics serves the agent's families" grep -q '^originguard_healthy ' "$TMP/agent-metrics.txt"
if promtool check metrics <"$TMP/agent-metrics.txt" >"$TMP/promtool-agent.log" 2>&1; then
  ok "promtool check metrics: the agent's text"
else
  fail "promtool check metrics: the agent's text"
  sed 's/^/    /' "$TMP/promtool-agent.log"
fi
IN agentctl gatekeeper metrics >"$TMP/gk-metrics.txt" 2>/dev/null || true
check "agentctl gatekeeper metrics serves the gatekeeper's families" grep -q '^og_gk_connections_active ' "$TMP/gk-metrics.txt"
if promtool check metrics <"$TMP/gk-metrics.txt" >"$TMP/promtool-gk.log" 2>&1; then
  ok "promtool check metrics: the gatekeeper's text"
else
  fail "promtool check metrics: the gatekeeper's text"
  sed 's/^/    /' "$TMP/promtool-gk.log"
fi

# [realip] under the real unit, as docs/DEPLOYMENT.md has the operator do it: a root-only
# directory, a drop-in opening it (ProtectSystem=strict), and on_change reloading a unit with
# systemctl from inside the agent's sandbox (a stand-in unit whose reload leaves a mark).
IN install -d -m 0755 /etc/nginx/originguard
IN sh -c 'printf "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\nExecReload=/bin/touch /run/og-realip-reloaded\n" \
  >/etc/systemd/system/og-realip-web.service'
IN sed -i -e 's#^nginx = "".*#nginx = "/etc/nginx/originguard/cloudflare-realip.conf"\non_change = ["/usr/bin/systemctl", "try-reload-or-restart", "og-realip-web"]#' \
  -e 's#^listen = "".*#listen = "127.0.0.1:9463"#' /etc/originguard/agent.toml
IN systemctl daemon-reload
IN systemctl start og-realip-web.service
check "--check-config accepts the [realip] recipe" IN originguard-agent --check-config --config /etc/originguard/agent.toml
IN agentctl --gatekeeper-socket /nonexistent reload >/dev/null 2>&1 || true
write_refused() {  # without the drop-in, /etc is read-only for the agent: said so, with the fix
  local j
  j=$(IN agentctl --gatekeeper-socket /nonexistent status --json 2>/dev/null || true)
  jq -e '.warning_details[] | select(.id == "realip.write_failed") | .text
    | test("Read-only file system .under systemd: allow the directory with ReadWritePaths=")' <<<"$j" ||
    { jq -c '.warning_details' <<<"$j"; IN ls -la /etc/nginx/originguard; IN journalctl -n 20 --no-pager -u originguard-agent; false; }
}
check "[realip] without the drop-in: realip.write_failed names ReadWritePaths" wait_for 30 write_refused
IN mkdir -p /etc/systemd/system/originguard-agent.service.d
IN sh -c 'printf "[Service]\nReadWritePaths=-/etc/nginx/originguard -/etc/haproxy/originguard\n" \
  >/etc/systemd/system/originguard-agent.service.d/realip.conf'
IN systemctl daemon-reload
IN systemctl restart originguard-agent.service || true
realip_written() { IN test -s /etc/nginx/originguard/cloudflare-realip.conf; }
check "[realip]: the sandboxed agent writes the nginx file (ReadWritePaths drop-in)" wait_for 30 realip_written
reloaded() { IN test -e /run/og-realip-reloaded; }
check "[realip]: on_change (systemctl try-reload-or-restart) reloads a unit from inside the sandbox" wait_for 30 reloaded
realip_ok() {
  local j
  j=$(IN agentctl --gatekeeper-socket /nonexistent status --json 2>/dev/null || true)
  jq -e '.ranges.ipv4 > 0 and ([.warning_details[] | select(.id | startswith("realip."))] | length == 0)' <<<"$j"
}
check "[realip]: no realip warning in status" wait_for 30 realip_ok
IN sh -c 'printf "pid /tmp/og-nginx.pid;\nerror_log /tmp/og-nginx.log;\nevents {}\nhttp { include /etc/nginx/originguard/cloudflare-realip.conf; }\n" >/tmp/og-nginx.conf'
check "[realip]: nginx -t with the agent's file included" IN nginx -t -c /tmp/og-nginx.conf -e /tmp/og-nginx.log
# The operator takes the recipe out again (a purge leaves web-server files alone).
# [metrics] listen, set above with the [realip] keys: the sandboxed agent serves its text.
scraped() { IN curl -sf -o /var/tmp/og-package/scrape.txt http://127.0.0.1:9463/metrics; }
check "[metrics] listen: GET http://127.0.0.1:9463/metrics answers under the unit's sandbox" wait_for 30 scraped
check "... promtool check metrics accepts it" bash -c "promtool check metrics <'$R/var/tmp/og-package/scrape.txt'"
check "... with the enforcer families" grep -q '^originguard_enforcer_applies_total{enforcer="nftables",result="ok"} ' \
  "$R/var/tmp/og-package/scrape.txt"
IN rm -f /var/tmp/og-package/scrape.txt
IN systemctl stop og-realip-web.service
IN rm -rf /etc/nginx/originguard /etc/systemd/system/originguard-agent.service.d \
  /etc/systemd/system/og-realip-web.service /tmp/og-nginx.conf /tmp/og-nginx.log
IN systemctl daemon-reload

restarts=$(IN systemctl show -p NRestarts --value originguard-agent.service originguard-gatekeeper.service | grep . | tr '\n' ' ')
if [[ $restarts == "0 0 " ]]; then
  ok "neither daemon restarted on its own (NRestarts: $restarts)"
else
  fail "a daemon restarted on its own (NRestarts agent, gatekeeper: $restarts)"
  IN journalctl --no-pager -n 60 -u originguard-agent.service -u originguard-gatekeeper.service | sed 's/^/    /'
fi

# ---- 7. purge ----------------------------------------------------------------------------
log "dpkg --purge"
IN rm -rf /etc/originguard/tls  # the operator's own files go first, as they would
if IN dpkg --purge originguard-dbgsym originguard >"$TMP/dpkg-purge.log" 2>&1; then
  ok "dpkg --purge originguard-dbgsym originguard"
else
  fail "dpkg --purge"
  sed 's/^/    /' "$TMP/dpkg-purge.log"
fi
left=$(IN pgrep -af '/usr/sbin/originguard-' || true)
check "no originguard process left ${left:+($left)}" test -z "$left"
check "no originguard unit left" test -z "$(IN systemctl list-unit-files 'originguard*' --no-legend)"
check "nothing in the kernel: no table inet originguard" not matches originguard "$(IN nft list tables)"
check "nothing in the kernel: no BPF pins under /sys/fs/bpf/originguard" not IN test -e /sys/fs/bpf/originguard
check "dpkg knows no originguard package" not IN dpkg -s originguard
check "user originguard-gk kept (Debian policy: system users are not removed on purge)" IN getent passwd originguard-gk

# Every path the install and the daemons created or changed, that is still there: only
# dpkg's and the system's own bookkeeping may remain.
snapshot >"$TMP/upper.after"
# New entries of the upper layer that are real residue: not a directory that already existed
# in the system below (overlayfs copies those up), not a whiteout (a deletion).
while read -r p; do
  [[ -d $UPPER/$p && ! -L $UPPER/$p && -d /$p ]] && continue
  [[ -c $UPPER/$p ]] && continue
  echo "$p"
done < <(comm -13 "$TMP/upper.before" "$TMP/upper.after") >"$TMP/upper.new"
# man-db's cache (index, formatted pages, which its daily job expires) is man-db's, not ours.
allowed='^(var/lib/dpkg/|var/log/|var/cache/debconf/|var/cache/man/|var/lib/systemd/|'
allowed+='etc/(passwd|group|shadow|gshadow)-?$|etc/\.pwd\.lock$)'
left=$(grep -Ev "$allowed" "$TMP/upper.new" || true)
named=$(grep -Ei 'originguard|agentctl' "$TMP/upper.new" | grep -Ev '^var/(lib/dpkg|log|cache/man)/' || true)
if [[ -z $left && -z $named ]]; then
  ok "purge left no file behind ($(wc -l <"$TMP/upper.new") paths changed: dpkg's and the system's bookkeeping)"
else
  fail "purge left files behind"
  printf '%s\n' "$left" "$named" | sort -u | grep . | sed 's/^/    /'
fi
cp "$TMP/upper.new" "$TMP/upper-new.log"

echo "$passes passed, $fails failed"
((fails == 0))
