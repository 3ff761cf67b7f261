#!/usr/bin/env bash
# The main job, sandboxed: runs originguard-agent with its built-in defaults inside a fresh
# network namespace (the host's firewall and interfaces are never touched), then shows
# `agentctl status`. The sandbox has no route to the Internet, so the first refresh fails
# and status reports it while the embedded ranges stay in force: that is the fail-safe path.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-${OG_BUILD:-build}}
AGENT=$BUILD_DIR/originguard-agent
CTL=$BUILD_DIR/agentctl
# 77: skipped (CTest's SKIP_RETURN_CODE for e2e_demo); the demo needs a network namespace.
[[ $(id -u) -eq 0 ]] || { echo "demo: SKIP: needs root (network namespace)" >&2; exit 77; }

NS=og-demo-$$
WORK=$(mktemp -d /tmp/og-demo.XXXXXX)
AGENT_PID=
cleanup() {
  [[ -n $AGENT_PID ]] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
# Built-in defaults for everything but the paths, which go to a scratch directory.
cat >"$WORK/agent.toml" <<TOML
[ranges]
state_dir = "$WORK/state"
export_file = "$WORK/edge-ranges.json"
[control]
socket = "$WORK/agent.sock"
TOML

echo "== originguard-agent (built-in defaults) in network namespace $NS"
ip netns exec "$NS" "$AGENT" --config "$WORK/agent.toml" --foreground 2>"$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 100); do
  ip netns exec "$NS" "$CTL" -s "$WORK/agent.sock" version >/dev/null 2>&1 && break
  sleep 0.1
done
# Let the first refresh attempt finish (it fails fast: no network in the sandbox).
for _ in $(seq 100); do
  out=$(ip netns exec "$NS" "$CTL" -s "$WORK/agent.sock" status --json 2>/dev/null || true)
  [[ $out == *'"refreshing": false'* ]] && break
  sleep 0.1
done
echo "== agentctl status"
rc=0
ip netns exec "$NS" "$CTL" -s "$WORK/agent.sock" status || rc=$?
echo "== nft list table inet originguard (inside the sandbox)"
ip netns exec "$NS" nft list table inet originguard || true
echo "== agent log"
sed 's/^/  /' "$WORK/agent.log"
echo

# What the demo must show, checked (this script is also the e2e_demo test): the embedded
# 15 + 7 ranges in force and programmed in the sandbox's kernel, the failed first refresh
# reported, and status degraded (exit 1) for that reason only.
fails=0
check() {  # description, command...
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then echo "ok: $what"; else echo "FAIL: $what" >&2; fails=$((fails + 1)); fi
}
json=$(ip netns exec "$NS" "$CTL" -s "$WORK/agent.sock" status --json || true)
table=$(ip netns exec "$NS" nft -j list table inet originguard 2>/dev/null || true)
in_set() {  # set address: the kernel's set holds the address
  ip netns exec "$NS" nft get element inet originguard "$1" "{ $2 }"
}
all_in_set() {  # set family: every prefix in force (status) is in the kernel's set
  local p
  for p in $(jq -r ".ranges.${2}_cidrs[]" <<<"$json"); do in_set "$1" "$p" || return 1; done
}
check "agentctl status exits 1 (degraded: the sandbox has no route to the API)" test "$rc" -eq 1
check "status: 15 IPv4 + 7 IPv6 embedded ranges in force" \
  jq -e '.ranges.ipv4 == 15 and .ranges.ipv6 == 7 and .ranges.source == "embedded bootstrap snapshot"' <<<"$json"
check "status: the failed refresh is the reported error" jq -e '.ranges.last_error | test("api.cloudflare.com")' <<<"$json"
check "status: nftables table present in enforce mode" \
  jq -e '.enforcers.nftables.table_present == true and .enforcers.nftables.mode == "enforce"' <<<"$json"
check "status: no warning but the refresh failure needs action" \
  jq -e '[.warnings[] | select(test("refresh failed|bootstrap snapshot") | not)] | length == 0' <<<"$json"
check "kernel: edge_v4 holds every IPv4 range in force" all_in_set edge_v4 ipv4
check "kernel: edge_v6 holds every IPv6 range in force" all_in_set edge_v6 ipv6
check "kernel: an address outside them (203.0.113.7) is not in edge_v4" bash -c "! ip netns exec $NS nft get element inet originguard edge_v4 '{ 203.0.113.7 }'"
check "kernel: ports 80 and 443 are protected" \
  jq -e '[.nftables[] | select(.set.name == "ports") | .set.elem[]] | sort == [80, 443]' <<<"$table"
echo "agentctl status exited $rc (0 healthy, 1 degraded, 2 unreachable); $fails check(s) failed."
((fails == 0))
