#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each one for N seconds
# (default 30) from its seed corpus (tests/fuzz/corpus/<target>/). Any crash, sanitizer
# report, leak, violated invariant or timeout fails the script; the reproducer is left in
# build-fuzz/artifacts/.
#   scripts/fuzz.sh [seconds]          FUZZ_BUILD_DIR, JOBS (build), FUZZ_JOBS (targets run at
#                                      once; default nproc) override the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=(fuzz_prefix fuzz_api_json fuzz_text_list fuzz_config fuzz_control_request fuzz_range_snapshot fuzz_store fuzz_aop_envelope
         fuzz_metrics_request fuzz_fetch_frame fuzz_gk_sni fuzz_gk_http_host fuzz_gk_proxy_v2 fuzz_gk_config)

CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$BUILD_DIR" -G Ninja -DOG_FUZZ=ON >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-$(nproc)}" --target "${TARGETS[@]}"
[[ -z ${OG_BUILD_ONLY:-} ]] || exit 0  # scripts/test.sh builds ahead, in the background

mkdir -p "$BUILD_DIR/artifacts"
# FUZZ_JOBS targets at a time (default: one per core), each for the full SECS: libFuzzer
# runs one process per target, so two cores run two targets in the wall time of one.
PAR=${FUZZ_JOBS:-$(nproc)}
run_one() {
  local t=$1
  # New inputs go to the first directory (kept between runs), never into the seeds in git.
  local corpus="$BUILD_DIR/corpus/$t"
  mkdir -p "$corpus"
  rm -f "$BUILD_DIR/$t.failed"
  "$BUILD_DIR/tests/fuzz/$t" -max_len=65536 -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$t-" \
    "$corpus" "tests/fuzz/corpus/$t" >"$BUILD_DIR/$t.log" 2>&1 || touch "$BUILD_DIR/$t.failed"
}
FUZZ_START=$SECONDS
running=0
for t in "${TARGETS[@]}"; do
  if ((running >= PAR)); then
    wait -n || true
    running=$((running - 1))
  fi
  echo "== $t (${SECS}s)"
  run_one "$t" &
  running=$((running + 1))
done
wait
failed=()
execs=()
for t in "${TARGETS[@]}"; do
  if [[ -e $BUILD_DIR/$t.failed ]]; then
    echo "== $t FAILED"
    tail -n 40 "$BUILD_DIR/$t.log"
    failed+=("$t")
    continue
  fi
  execs+=("$t $(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD_DIR/$t.log" | tail -n 1)")
done
echo "fuzz: ${#TARGETS[@]} targets, $PAR at a time, in $((SECONDS - FUZZ_START)) s"
# Executions per target, the figures docs/TESTING.md records.
printf 'fuzz: executions %s\n' "${execs[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (logs in $BUILD_DIR/<target>.log, inputs in $BUILD_DIR/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets ran ${SECS}s each without a finding"
