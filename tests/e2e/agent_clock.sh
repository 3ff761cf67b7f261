#!/usr/bin/env bash
# e2e: the wall clock jumps forward and back under a running agent, and only under it:
# libfaketime (LD_PRELOAD) moves the agent's CLOCK_REALTIME by what a file says, re-read at
# every call (FAKETIME_TIMESTAMP_FILE + FAKETIME_NO_CACHE), and leaves CLOCK_MONOTONIC alone
# (FAKETIME_DONT_FAKE_MONOTONIC), as an NTP step or `date -s` would; the host's clock is
# never touched. The agent refreshes every 4 s (jitter 0) from a file:// source (no TLS, whose
# certificate dates a jump would break), stale_after is 1 h.
#   - forward 2 h: no ranges.stale, age_s stays a few seconds, no burst of refreshes;
#   - back 4 h (2 h behind the real clock, the last fetch now 4 h "in the future"): no
#     ranges.fetched_in_future, age_s never negative, refreshes keep coming every interval;
#   - each jump is seen by the agent: the checked_at of its next refresh is the moved time.
source "$(dirname "$0")/lib.sh"
og_setup clock
[[ -x $AGENT && -x $CTL ]] || { og_log "SKIP: originguard-agent/agentctl not built"; exit 77; }
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -1)
[[ -n $FAKETIME_LIB ]] || { og_log "SKIP: libfaketime not installed (scripts/install-deps.sh)"; exit 77; }

NS=$(og_netns clock)
SOCK=$OG_TMP/agent.sock
LOG=$OG_TMP/agent.log
CLOCK=$OG_TMP/faketime  # the agent's offset from the real wall clock
echo "+0" >"$CLOCK"
cp "$OG_TEST_DATA/test-edge-ips.json" "$OG_TMP/ranges.json"
cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["file://$OG_TMP/ranges.json"]
state_dir = "$OG_TMP/state"
export_file = ""
refresh_interval = "4s"
jitter = 0.0
retry_min = "1s"
stale_after = "1h"

[protect]
ports = [443]

[control]
socket = "$SOCK"
TOML

ctl() { ip netns exec "$NS" "$CTL" -s "$SOCK" "$@"; }
st() { og_status "$NS" "$SOCK" "$1" || true; }
ip netns exec "$NS" env LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$CLOCK" FAKETIME_NO_CACHE=1 \
  FAKETIME_DONT_FAKE_MONOTONIC=1 "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$LOG" &
AGENT_PID=$!
OG_PIDS+=("$AGENT_PID")
og_wait_for 20 ctl version || og_fail "agent did not start"
og_check "healthy at the start" og_wait_for 20 bash -c "[[ \$(ip netns exec $NS $CTL -s $SOCK status --json | jq -r .health) == healthy ]]"

refreshes() { grep -c 'event=refresh.ok' "$LOG" || true; }
# The agent's checked_at minus the real clock, in hours (rounded): which offset it runs on.
offset_h() {
  local c
  c=$(st .ranges.checked_at)
  [[ $c == null || -z $c ]] && { echo none; return; }
  local d=$(($(date -d "$c" +%s) - $(date +%s)))
  ((d >= 0)) && echo $(((d + 1800) / 3600)) || echo $((-((1800 - d) / 3600)))
}
# Status stays sane for $1 seconds: healthy, no stale/future warning, 0 <= age_s <= 10.
sane_for() {
  local until=$((SECONDS + $1)) v
  while ((SECONDS < until)); do
    v=$(st '"\(.health) \(.ranges.age_s) \([.warning_details[]?.id] | join(","))"')
    read -r h age warns <<<"$v"
    if [[ $h != healthy || ! $age =~ ^[0-9]+$ || $age -gt 10 || -n $warns ]]; then
      echo "$v"
      return 1
    fi
    sleep 0.5
  done
  echo ok
}
# sane_for 9, then the rest of the 9 s when it stopped early: the refreshes are counted over 9 s.
sane_9s() {
  local t=$SECONDS
  out=$(sane_for 9) || true
  while ((SECONDS < t + 9)); do sleep 0.5; done
}

og_check "the agent runs on the real clock (offset $(offset_h) h)" [ "$(offset_h)" = 0 ]

# --- forward 2 h ---------------------------------------------------------------------------
echo "+2h" >"$CLOCK"
r0=$(refreshes)
sane_9s
r1=$(refreshes)
og_check "forward 2 h: healthy, age_s 0..10, no warning for 9 s ($out)" [ "$out" = ok ]
og_check "forward 2 h: no burst of refreshes ($((r1 - r0)) in 9 s at one per 4 s)" [ $((r1 - r0)) -ge 1 -a $((r1 - r0)) -le 3 ]
og_check "forward 2 h: the agent saw the jump (checked_at $(offset_h) h ahead)" [ "$(offset_h)" = 2 ]

# --- back 4 h: 2 h behind the real clock ---------------------------------------------------
echo "-2h" >"$CLOCK"
# The last fetch (2 h ahead) is now 4 h in the future for the agent until its next refresh.
v=$(st '"\(.ranges.age_s) \([.warning_details[]?.id] | join(","))"')
r0=$(refreshes)
sane_9s
r1=$(refreshes)
og_check "back 4 h: right after the jump, age_s not negative, no warning ($v)" bash -c "[[ '$v' =~ ^[0-9]+\ \$ ]]"
og_check "back 4 h: healthy, age_s 0..10, no warning for 9 s ($out)" [ "$out" = ok ]
og_check "back 4 h: refreshes not postponed ($((r1 - r0)) in 9 s at one per 4 s)" [ $((r1 - r0)) -ge 1 -a $((r1 - r0)) -le 3 ]
og_check "back 4 h: the agent saw the jump (checked_at $(offset_h) h)" [ "$(offset_h)" = -2 ]
og_check "status: uptime_s sane ($(st .agent.uptime_s))" bash -c "(( \$(ip netns exec $NS $CTL -s $SOCK status --json | jq .agent.uptime_s) >= 0 && \$(ip netns exec $NS $CTL -s $SOCK status --json | jq .agent.uptime_s) < 600 ))"

kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
og_finish
