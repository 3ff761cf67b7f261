#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each one for N seconds
# (default 30) from its seed corpus (tests/fuzz/corpus/<target>/). Any crash, sanitizer
# report, leak, violated invariant or timeout fails the script; the reproducer is left in
# build-fuzz/artifacts/.
#   scripts/fuzz.sh [seconds]          FUZZ_BUILD_DIR, JOBS override the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=(fuzz_prefix fuzz_api_json fuzz_text_list fuzz_config fuzz_control_request fuzz_range_snapshot fuzz_store fuzz_aop_envelope
         fuzz_metrics_request fuzz_fetch_frame fuzz_gk_sni fuzz_gk_http_host fuzz_gk_proxy_v2 fuzz_gk_config)

CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$BUILD_DIR" -G Ninja -DOG_FUZZ=ON >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-$(nproc)}" --target "${TARGETS[@]}"

mkdir -p "$BUILD_DIR/artifacts"
failed=()
execs=()
for t in "${TARGETS[@]}"; do
  # New inputs go to the first directory (kept between runs), never into the seeds in git.
  corpus="$BUILD_DIR/corpus/$t"
  mkdir -p "$corpus"
  echo "== $t (${SECS}s)"
  if ! "$BUILD_DIR/tests/fuzz/$t" -max_len=65536 -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$t-" \
      "$corpus" "tests/fuzz/corpus/$t" >"$BUILD_DIR/$t.log" 2>&1; then
    tail -n 40 "$BUILD_DIR/$t.log"
    failed+=("$t")
    continue
  fi
  grep -E '^stat::number_of_executed_units|^#[0-9]+ +DONE' "$BUILD_DIR/$t.log" | tail -n 2 || true
  execs+=("$t $(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD_DIR/$t.log" | tail -n 1)")
done
# Executions per target, the figures docs/TESTING.md records.
printf 'fuzz: executions %s\n' "${execs[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (logs in $BUILD_DIR/<target>.log, inputs in $BUILD_DIR/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets ran ${SECS}s each without a finding"
