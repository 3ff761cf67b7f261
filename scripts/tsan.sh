#!/usr/bin/env bash
# Data-race gate for the gatekeeper (it runs worker threads): builds the gatekeeper and its
# unit tests with ThreadSanitizer (g++, OG_TSAN=ON) in build-tsan/ and runs the gatekeeper's
# unit tier and its e2e tier (tests/e2e/gatekeeper, found through GK_BIN) against them. Any
# ThreadSanitizer report fails the script: the TSan programs stop at the first report with
# exit code 66, and every report is also written under build-tsan/tsan-reports/, which must
# stay empty (a report in a gatekeeper the e2e test stops by signal would not fail the test).
#   scripts/tsan.sh [cmake args]       TSAN_BUILD_DIR, JOBS override the defaults;
#                                      BUILD_DIR is the release build whose agentctl and agent
#                                      the e2e tier's test_control.sh runs next to the gatekeeper
#   OG_TSAN_E2E=0 scripts/tsan.sh      the unit tier only (no root needed)
#   OG_TSAN_E2E_TESTS="tests/e2e/gatekeeper/test_control.sh ..."   only these e2e scripts
#                                      (scripts/test.sh runs a short form; docs/TESTING.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REL_DIR=${BUILD_DIR:-build}
BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
START=$SECONDS

# -O1 -g1: line tables for the reports, about half the compile time of -O2 -g.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DOG_TSAN=ON -DOG_BENCH=OFF "$@" >/dev/null
# Only what the two tiers run: the gatekeeper and its unit tests (agentctl and the agent are
# not under test here; test_control.sh takes them from the release build).
cmake --build "$BUILD_DIR" -j"${JOBS:-$(nproc)}" --target originguard-gatekeeper og_gk_unit_tests
echo "tsan: built in $((SECONDS - START)) s"
[[ -z ${OG_BUILD_ONLY:-} ]] || exit 0  # scripts/test.sh builds ahead, in the background

REPORTS=$ROOT/$BUILD_DIR/tsan-reports
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
# tests/tsan.supp lists third-party false positives only, each with its reason.
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$ROOT/tests/tsan.supp:log_path=$REPORTS/tsan"

fail=0
echo "== gatekeeper unit tier under TSan"
# The tier's one executable, run once (ctest would start it once per test, 1-2 s each
# under TSan): the same tests as `ctest -L unit -R '^gatekeeper\.'`, from the same directory.
(cd "$BUILD_DIR/tests/unit/gatekeeper" && timeout 900 ./og_gk_unit_tests --gtest_brief=1) || fail=1
UNIT_END=$SECONDS

if [[ ${OG_TSAN_E2E:-1} != 0 ]]; then
  echo "== gatekeeper e2e tier under TSan"
  export GK_BIN=$ROOT/$BUILD_DIR/gatekeeper/originguard-gatekeeper
  export AGENTCTL=$ROOT/$REL_DIR/agentctl AGENT_BIN=$ROOT/$REL_DIR/originguard-agent
  export OG_SOURCE_DIR=$ROOT NO_COLOR=1
  for t in ${OG_TSAN_E2E_TESTS:-tests/e2e/gatekeeper/test_*.sh}; do
    t0=$SECONDS
    rc=0
    bash "$t" >"$REPORTS/../$(basename "$t" .sh).log" 2>&1 || rc=$?
    case $rc in
      0) echo "ok   - $t ($((SECONDS - t0)) s)" ;;
      77) echo "SKIP - $t ($((SECONDS - t0)) s)" ;;
      *) echo "FAIL - $t (exit $rc; log: $BUILD_DIR/$(basename "$t" .sh).log)"; tail -n 30 "$REPORTS/../$(basename "$t" .sh).log"; fail=1 ;;
    esac
  done
fi

if compgen -G "$REPORTS/tsan*" >/dev/null; then
  echo "tsan: ThreadSanitizer reports:" >&2
  for f in "$REPORTS"/tsan*; do echo "--- $f" >&2; head -n 60 "$f" >&2; done
  fail=1
fi
echo "tsan: unit tier $((UNIT_END - START)) s incl. build, e2e tier $((SECONDS - UNIT_END)) s, total $((SECONDS - START)) s"
((fail == 0)) || { echo "tsan: FAILED" >&2; exit 1; }
echo "tsan: no reports"
