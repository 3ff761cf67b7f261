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
[[ $(id -u) -eq 0 ]] || { echo "demo: needs root (network namespace)" >&2; exit 1; }

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
if ip netns exec "$NS" nft list tables 2>/dev/null | grep -q originguard; then
  echo "== nft list table inet originguard (inside the sandbox)"
  ip netns exec "$NS" nft list table inet originguard
fi
echo "== agent log"
sed 's/^/  /' "$WORK/agent.log"
echo
echo "agentctl status exited $rc (0 healthy, 1 degraded, 2 unreachable)."
[[ $rc -le 1 ]]
