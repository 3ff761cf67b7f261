#!/usr/bin/env bash
# Leak and undefined-behaviour gate: builds the tree with ASan + UBSan (g++, OG_SANITIZE=ON)
# in build-asan/ and runs the unit tier. Any sanitizer report fails a test and the script.
#   scripts/sanitize.sh                ASAN_BUILD_DIR, JOBS override the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}

# -O1 -g1, asserts on: ASan's recommended optimisation, line tables for its stack traces, and
# about half the compile time of -O2 -g (the CI time limit).
cmake -S . -B "$BUILD_DIR" -G Ninja -DOG_SANITIZE=ON -DOG_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" >/dev/null
# Only the unit-test executables: the tier this script runs.
cmake --build "$BUILD_DIR" -j"${JOBS:-$(nproc)}" --target og_unit_tests og_nft_unit_tests og_gk_unit_tests og_aop_unit_tests \
  og_xdp_unit_tests
[[ -z ${OG_BUILD_ONLY:-} ]] || exit 0  # scripts/test.sh builds ahead, in the background

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The packaging checks (label packaging) run the installed-program binaries, which this
# build does not make; the main ctest run has them. The unit tests are independent of each
# other (each makes its own temporary directory, binds port 0, names files by pid), so they
# run one per core.
ctest --test-dir "$BUILD_DIR" -L unit -LE packaging --output-on-failure --timeout 300 -j"${JOBS:-$(nproc)}"
