#!/usr/bin/env bash
# Fails when a tracked C++ file differs from .clang-format (clang-format 14). Fix: add --fix.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c' | grep -v '^tests/fuzz/corpus/')
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/og-format.$$; then
  grep -E '^[^ ].*: (error|warning):' /tmp/og-format.$$ | cut -d: -f1 | sort -u | sed 's/^/format drift: /'
  rm -f /tmp/og-format.$$
  echo "run scripts/check-format.sh --fix" >&2
  exit 1
fi
rm -f /tmp/og-format.$$
echo "format OK (${#files[@]} files)"
