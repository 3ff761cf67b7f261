#!/usr/bin/env bash
# Offline (unit tier): the generated man pages render without a groff warning (what lintian
# checks), carry the right name and section, and lose nothing of their sources: every
# agentctl subcommand is in agentctl(8), every key of the docs' "key | default | meaning"
# tables is in the matching section-5 page.
#   MAN_DIR=build/man AGENTCTL=build/agentctl bash tests/packaging/man_test.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAN_DIR=${MAN_DIR:?MAN_DIR must name build/man}
AGENTCTL=${AGENTCTL:?AGENTCTL must name the built agentctl}
fails=0 checks=0
check() {  # DESCRIPTION COMMAND...
  checks=$((checks + 1))
  if "${@:2}"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi
}

render() { MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l "$1" 2>"$2"; }

# keys DOC [SECTION]: first-column code spans of the key tables in DOC (optionally only
# under the level-2 heading SECTION), one per line.
keys() {
  awk -v want="${2-}" '
    /^## / { in_sec = (want == "" || $0 == "## " want) }
    in_sec && /^\| `/ {
      cell = $0; sub(/^\| /, "", cell); sub(/ \|.*/, "", cell)
      while (match(cell, /`[^`]+`/)) { print substr(cell, RSTART + 1, RLENGTH - 2); cell = substr(cell, RSTART + RLENGTH) }
    }' "$1"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A pages=(
  [originguard-agent.8.gz]="ORIGINGUARD-AGENT(8)"
  [originguard-gatekeeper.8.gz]="ORIGINGUARD-GATEKEEPER(8)"
  [agentctl.8.gz]="AGENTCTL(8)"
  [originguard-agent.toml.5.gz]="ORIGINGUARD-AGENT.TOML(5)"
  [originguard-gatekeeper.toml.5.gz]="ORIGINGUARD-GATEKEEPER.TOML(5)"
)
for page in "${!pages[@]}"; do
  f=$MAN_DIR/$page
  check "$page exists" test -s "$f"
  [[ -s $f ]] || continue
  render "$f" >"$tmp/$page.txt" "$tmp/$page.err" || true
  check "$page renders without groff warnings" test ! -s "$tmp/$page.err"
  [[ -s $tmp/$page.err ]] && sed 's/^/    /' "$tmp/$page.err"
  # .TH NAME SECTION: help2man quotes both, pandoc neither
  title=${pages[$page]%(*} section=${pages[$page]#*(}
  check "$page is ${pages[$page]}" grep -Eq "^\.TH \"?$title\"? \"?${section%)}\"? " <(zcat "$f")
  check "$page has a NAME section with a description" grep -A1 -q '^NAME' "$tmp/$page.txt"
  check "$page is gzip -9n (no name, no timestamp)" \
    test "$(od -An -tx1 -j3 -N5 "$f" | tr -d ' ')" = "0000000000"
done

# every subcommand path of agentctl appears in agentctl(8)'s COMMANDS section
commands=$(sed -n '/^COMMANDS/,/^[A-Z]/p' "$tmp/agentctl.8.gz.txt")
for cmd in $(NO_COLOR=1 "$AGENTCTL" --help | awk '/^Subcommands:/ {on=1; next} /^[A-Z]/ {on=0} on && /^  [^ ]/ {print $1}'); do
  check "agentctl(8) documents '$cmd'" grep -Eq "^ +$cmd( |$)" <<<"$commands"
done
check "agentctl(8) documents 'gatekeeper status --json'" grep -Eq '^ +gatekeeper status \[--json\]' <<<"$commands"

n=0
for key in $(keys "$ROOT/docs/CONFIG.md"); do
  n=$((n + 1))
  check "originguard-agent.toml(5) has key $key" grep -Eq "^ +(.*, )?$key(,|$| )" "$tmp/originguard-agent.toml.5.gz.txt"
done
check "docs/CONFIG.md has key tables (found $n keys)" test "$n" -gt 10
n=0
for key in $(keys "$ROOT/docs/GATEKEEPER.md" Configuration); do
  n=$((n + 1))
  check "originguard-gatekeeper.toml(5) has key $key" grep -Eq "^ +(.*, )?$key(,|$| )" \
    "$tmp/originguard-gatekeeper.toml.5.gz.txt"
done
check "docs/GATEKEEPER.md Configuration has key tables (found $n keys)" test "$n" -gt 10

echo "$((checks - fails)) passed, $fails failed"
((fails == 0))
