#!/usr/bin/env bash
# README command 2: install dependencies, build, and run every test:
#   0. clang-format drift check
#   1. CTest, all tiers: unit (in parallel), then bpf and e2e (network namespaces; root; serial)
#   2. unit tests again under ASan + UBSan
#   3. the gatekeeper's unit and e2e tiers under ThreadSanitizer
#   4. every libFuzzer target for a short bounded run
#   5. clang-tidy (.clang-tidy checks, warnings as errors) over the first-party sources
# Every stage runs even when an earlier one failed, so one run reports every failure; the
# script fails at the end if any did. Set OG_QUICK=1 to run only step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
scripts/install-deps.sh
echo "== format (.clang-format)"
scripts/check-format.sh
BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=$BUILD_DIR scripts/build.sh
failed=()

# The checker trees (ASan, TSan, fuzz) are built, and clang-tidy runs, in the background at the
# lowest CPU priority while CTest runs: the bpf and e2e tiers run one test at a time and spend
# most of their time waiting on daemons, namespaces and polls, so a 2-core machine has a core
# to spare. At nice 19 the background gets only what the tests leave (the tests run in the
# same session, hence the same autogroup, so nice applies). Job control gives the background
# its own process group, so that it can be stopped as a whole.
PREBUILD_LOG=$BUILD_DIR/prebuild.log
prebuild_pid=
if [[ -z ${OG_QUICK:-} ]]; then
  rm -f "$BUILD_DIR/clang-tidy.failed"
  set -m
  (
    export OG_BUILD_ONLY=1
    s=$SECONDS
    nice -n 19 scripts/sanitize.sh && echo "prebuild: asan built in $((SECONDS - s)) s" && s=$SECONDS &&
      BUILD_DIR=$BUILD_DIR nice -n 19 scripts/tsan.sh && echo "prebuild: tsan built in $((SECONDS - s)) s" &&
      s=$SECONDS && nice -n 19 scripts/fuzz.sh && echo "prebuild: fuzz built in $((SECONDS - s)) s" || exit 1
    # clang-tidy last: its result is final here (it needs only the release build's compile
    # commands), so its findings are kept for the report after CTest.
    BUILD_DIR=$BUILD_DIR nice -n 19 scripts/clang-tidy.sh >"$BUILD_DIR/clang-tidy.log" 2>&1 ||
      touch "$BUILD_DIR/clang-tidy.failed"
  ) >"$PREBUILD_LOG" 2>&1 &
  prebuild_pid=$!
  set +m
  trap '[[ -n $prebuild_pid ]] && kill -- -"$prebuild_pid" 2>/dev/null || true' EXIT
fi

echo "== ctest: unit tier"
# Unit tests are independent of each other (own temporary directories, port 0): one per core.
ctest --test-dir "$BUILD_DIR" -L unit --output-on-failure --timeout 900 -j"$(nproc)" || failed+=("ctest unit tier")
echo "== ctest: bpf and e2e tiers"
# Everything else, one at a time: these are timing-sensitive (kill points, polling bounds).
ctest --test-dir "$BUILD_DIR" -LE unit --output-on-failure --timeout 900 -j1 || failed+=("ctest bpf/e2e tiers")

if [[ -n $prebuild_pid ]]; then
  echo "== waiting for the background builds and clang-tidy"
  prebuild_rc=0
  wait "$prebuild_pid" || prebuild_rc=$?
  prebuild_pid=
  grep '^prebuild:\|^clang-tidy:\|^tsan: built' "$PREBUILD_LOG" || true
  if ((prebuild_rc != 0)); then
    tail -n 60 "$PREBUILD_LOG"
    failed+=("background builds (log: $PREBUILD_LOG)")
  else
    echo "== clang-tidy"
    if [[ -e $BUILD_DIR/clang-tidy.failed ]]; then
      cat "$BUILD_DIR/clang-tidy.log"
      failed+=("clang-tidy")
    else
      tail -n 1 "$BUILD_DIR/clang-tidy.log"
    fi
    # The trees are built: each script below re-checks them (a no-op) and runs its tests.
    echo "== unit tests under ASan + UBSan"
    scripts/sanitize.sh || failed+=("ASan + UBSan")
    echo "== gatekeeper unit + e2e tiers under ThreadSanitizer"
    # Short form for the CI time limit: the e2e scripts where threads meet (reloads swapping
    # the policy and edge snapshots under live connections, the control socket while
    # serving); `scripts/tsan.sh` alone runs the whole gatekeeper e2e tier (docs/TESTING.md).
    BUILD_DIR=$BUILD_DIR OG_TSAN_E2E_TESTS=${OG_TSAN_E2E_TESTS:-"tests/e2e/gatekeeper/test_control.sh
      tests/e2e/gatekeeper/test_edge_proxy_reload.sh tests/e2e/gatekeeper/test_http_policy_reload.sh"} \
      scripts/tsan.sh || failed+=("TSan")
    echo "== fuzz smoke"
    scripts/fuzz.sh "${OG_FUZZ_SECONDS:-10}" || failed+=("fuzz")
  fi
fi
if ((${#failed[@]})); then
  printf '== FAILED: %s\n' "${failed[@]}" >&2
  echo "== $((SECONDS - START)) s" >&2
  exit 1
fi
echo "== all tests passed in $((SECONDS - START)) s"
