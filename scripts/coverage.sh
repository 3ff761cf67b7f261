#!/usr/bin/env bash
# Line coverage of common/, agent/ and gatekeeper/ (gcovr, Debian's package): builds the tree
# with --coverage (g++, -O0) in build-cov/, runs the test tiers, and prints the figures that
# docs/TESTING.md records. Not part of CI (a full -O0 build plus the tiers again).
#   scripts/coverage.sh [--all] [cmake args]
#     (default)  the unit tier only (no root)
#     --all      unit, then bpf and e2e (root, network namespaces, real daemons: the agent's
#                and the gatekeeper's e2e runs count), one test at a time
#   COV_BUILD_DIR, JOBS override the defaults; OG_COV_LABELS (a CTest label regex, e.g.
#   'unit|e2e') overrides the tiers.
# The package test (e2e_package) is left out: it runs the .deb's stripped binaries in a
# container, which write no coverage. Daemons write their counts when they exit normally
# (SIGTERM); a process killed with SIGKILL (agent_kill9) or ended by _exit() loses its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${COV_BUILD_DIR:-build-cov}
LABELS=unit
if [[ ${1:-} == --all ]]; then
  LABELS='unit|bpf|e2e'
  shift
fi
LABELS=${OG_COV_LABELS:-$LABELS}
START=$SECONDS
command -v gcovr >/dev/null || { echo "coverage: gcovr missing (scripts/install-deps.sh)" >&2; exit 1; }

# -fprofile-update=atomic: the gatekeeper and several tests count from more than one thread.
FLAGS="--coverage -fprofile-update=atomic"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DOG_BENCH=OFF \
  -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-$(nproc)}"
echo "coverage: built in $((SECONDS - START)) s"

# Counts from an earlier run would add up with this one's. Every .gcda is then created empty
# (libgcov takes an empty file for a new one) and writable by anyone: processes that are not
# root write counts into the same files as root's, e.g. the fetch helper once it has become
# nobody (it shares common/ and agent/ranges/ with the agent), agentctl run as another user
# by the control tests, and the tests' own unprivileged clients. A root-owned 0644 file left
# by the first writer would make theirs fail ("profiling: ... Cannot open"), on the stderr
# that some tests check, and lose their counts.
find "$BUILD_DIR" -name '*.gcda' -delete
find "$BUILD_DIR" -name '*.gcno' -print0 | while IFS= read -r -d '' f; do
  : >"${f%.gcno}.gcda"
done
find "$BUILD_DIR" -name '*.gcda' -exec chmod 0666 {} +
T0=$SECONDS
rc=0
# ctest -L takes one regex; the tiers run in this order, unit first (it is the only one that
# runs two at a time: no daemons, no namespaces).
for tier in unit bpf e2e; do
  [[ $tier =~ ^($LABELS)$ ]] || continue
  T1=$SECONDS
  j=1
  [[ $tier == unit ]] && j=${JOBS:-$(nproc)}
  trc=0
  ctest --test-dir "$BUILD_DIR" -L "^$tier\$" -E '^e2e_package$' --output-on-failure --timeout 900 -j"$j" || trc=$?
  echo "coverage: $tier tier ran in $((SECONDS - T1)) s, ctest exit $trc"
  [[ $trc -eq 0 ]] || rc=$trc
done
echo "coverage: tests ($LABELS) ran in $((SECONDS - T0)) s"
# A count file that could not be written would show up here as a stale empty one: say so.
unwritten=$(find "$BUILD_DIR" -name '*.gcda' -size 0 | wc -l)
echo "coverage: $unwritten of $(find "$BUILD_DIR" -name '*.gcda' | wc -l) count files never written (objects no test ran)"
find "$BUILD_DIR" -name '*.gcda' -size 0 -delete

# One gcovr pass over the first-party sources (generated sources in the build dir and the
# tests themselves are not counted), then the sums per group.
gcovr -r "$ROOT" --object-directory "$BUILD_DIR" -j"${JOBS:-$(nproc)}" \
  --filter "$ROOT/common/" --filter "$ROOT/agent/" --filter "$ROOT/gatekeeper/" \
  --exclude-unreachable-branches --json-summary "$BUILD_DIR/coverage-summary.json" \
  --txt "$BUILD_DIR/coverage.txt" >/dev/null
python3 - "$BUILD_DIR/coverage-summary.json" "$LABELS" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
def total(prefixes):
    c = sum(f["line_covered"] for f in files if f["filename"].startswith(prefixes))
    n = sum(f["line_total"] for f in files if f["filename"].startswith(prefixes))
    return c, n
print(f"coverage: lines covered by the {sys.argv[2]} tier(s)")
for name, prefixes in (("common/", ("common/",)), ("agent/", ("agent/",)),
                       ("common/ + agent/", ("common/", "agent/")), ("gatekeeper/", ("gatekeeper/",)),
                       ("total", ("common/", "agent/", "gatekeeper/"))):
    c, n = total(prefixes)
    print(f"coverage: {name:18} {100.0 * c / max(n, 1):5.1f} % ({c}/{n})")
# Where the most lines go untested (absolute, not percent: a 10-line file at 0 % matters less
# than a 1,000-line one at 70 %).
print("coverage: most lines not covered:")
for f in sorted(files, key=lambda f: f["line_covered"] - f["line_total"])[:10]:
    print(f"coverage:   {f['line_total'] - f['line_covered']:5} of {f['line_total']:5} "
          f"({100.0 * f['line_covered'] / max(f['line_total'], 1):5.1f} % covered)  {f['filename']}")
PY
echo "coverage: per file in $BUILD_DIR/coverage.txt; total $((SECONDS - START)) s"
exit "$rc"
