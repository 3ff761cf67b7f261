#!/usr/bin/env bash
# Line coverage of common/, agent/ and gatekeeper/ (gcovr, Debian's package): builds the tree
# with --coverage (g++, -O0) in build-cov/, runs the test tiers, and prints the figures that
# docs/TESTING.md records. Not part of CI (a full -O0 build plus every tier again).
#   scripts/coverage.sh [cmake args]   COV_BUILD_DIR, JOBS override the defaults
#   OG_COV_LABELS='unit|bpf|e2e'       the CTest labels to run (a regex; default all three
#                                      tiers; 'unit' needs no root)
# The package test (e2e_package) is left out: it runs the .deb's stripped binaries in a
# container, which write no coverage. Daemons write their counts when they exit normally
# (SIGTERM); a process killed with SIGKILL (agent_kill9) loses its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${COV_BUILD_DIR:-build-cov}
LABELS=${OG_COV_LABELS:-unit|bpf|e2e}
START=$SECONDS
command -v gcovr >/dev/null || { echo "coverage: gcovr missing (scripts/install-deps.sh)" >&2; exit 1; }

# -fprofile-update=atomic: the gatekeeper and several tests count from more than one thread.
FLAGS="--coverage -fprofile-update=atomic"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DOG_BENCH=OFF \
  -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-$(nproc)}"
echo "coverage: built in $((SECONDS - START)) s"

# Counts from an earlier run would add up with this one's.
find "$BUILD_DIR" -name '*.gcda' -delete
T0=$SECONDS
rc=0
ctest --test-dir "$BUILD_DIR" -L "$LABELS" -E '^e2e_package$' --output-on-failure --timeout 900 -j1 || rc=$?
echo "coverage: tests ($LABELS) ran in $((SECONDS - T0)) s, ctest exit $rc"

# One gcovr pass over the first-party sources (generated sources in the build dir and the
# tests themselves are not counted), then the sums per group.
gcovr -r "$ROOT" --object-directory "$BUILD_DIR" -j"${JOBS:-$(nproc)}" \
  --filter "$ROOT/common/" --filter "$ROOT/agent/" --filter "$ROOT/gatekeeper/" \
  --exclude-unreachable-branches --json-summary "$BUILD_DIR/coverage-summary.json" \
  --txt "$BUILD_DIR/coverage.txt" >/dev/null
python3 - "$BUILD_DIR/coverage-summary.json" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
def total(prefixes):
    c = sum(f["line_covered"] for f in files if f["filename"].startswith(prefixes))
    n = sum(f["line_total"] for f in files if f["filename"].startswith(prefixes))
    return c, n
for name, prefixes in (("common/", ("common/",)), ("agent/", ("agent/",)),
                       ("common/ + agent/", ("common/", "agent/")), ("gatekeeper/", ("gatekeeper/",))):
    c, n = total(prefixes)
    print(f"coverage: {name:18} {100.0 * c / max(n, 1):5.1f} % of lines ({c}/{n})")
PY
echo "coverage: per file in $BUILD_DIR/coverage.txt; total $((SECONDS - START)) s"
exit "$rc"
