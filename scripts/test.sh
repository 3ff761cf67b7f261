#!/usr/bin/env bash
# README command 2: install dependencies, build, and run every test:
#   0. clang-format drift check
#   1. CTest, all tiers: unit (in parallel), then bpf and e2e (network namespaces; root; serial)
#   2. unit tests again under ASan + UBSan
#   3. the gatekeeper's unit and e2e tiers under ThreadSanitizer
#   4. every libFuzzer target for a short bounded run
# Set OG_QUICK=1 to run only step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
scripts/install-deps.sh
echo "== format (.clang-format)"
scripts/check-format.sh
BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=$BUILD_DIR scripts/build.sh
echo "== ctest: unit tier"
# Unit tests are independent of each other (own temporary directories, port 0): one per core.
ctest_rc=0
ctest --test-dir "$BUILD_DIR" -L unit --output-on-failure --timeout 900 -j"$(nproc)" || ctest_rc=1
echo "== ctest: bpf and e2e tiers"
# Everything else, one at a time: these are timing-sensitive (kill points, polling bounds).
# Run even when a unit test failed, so that one CI run reports every failing tier.
ctest --test-dir "$BUILD_DIR" -LE unit --output-on-failure --timeout 900 -j1 || ctest_rc=1
((ctest_rc == 0))
if [[ -z ${OG_QUICK:-} ]]; then
  if [[ -x scripts/sanitize.sh ]]; then
    echo "== unit tests under ASan + UBSan"
    scripts/sanitize.sh
  fi
  if [[ -x scripts/tsan.sh ]]; then
    echo "== gatekeeper unit + e2e tiers under ThreadSanitizer"
    # Short form for the CI time limit: the e2e scripts where threads meet (reloads swapping
    # the policy and edge snapshots under live connections, the control socket while
    # serving); `scripts/tsan.sh` alone runs the whole gatekeeper e2e tier (docs/TESTING.md).
    BUILD_DIR=$BUILD_DIR OG_TSAN_E2E_TESTS=${OG_TSAN_E2E_TESTS:-"tests/e2e/gatekeeper/test_control.sh
      tests/e2e/gatekeeper/test_edge_proxy_reload.sh tests/e2e/gatekeeper/test_http_policy_reload.sh"} scripts/tsan.sh
  fi
  if [[ -x scripts/fuzz.sh ]]; then
    echo "== fuzz smoke"
    scripts/fuzz.sh "${OG_FUZZ_SECONDS:-10}"
  fi
fi
echo "== all tests passed in $((SECONDS - START)) s"
