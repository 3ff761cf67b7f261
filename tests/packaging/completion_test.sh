#!/usr/bin/env bash
# Offline (unit tier): the bash completion for agentctl offers exactly the subcommands and the
# options that agentctl's own --help lists, at every level, so a command added to agentctl
# and not to packaging/completion/agentctl (or the reverse) fails here.
#   AGENTCTL=build/agentctl bash tests/packaging/completion_test.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
AGENTCTL=${AGENTCTL:?AGENTCTL must name the built agentctl}
COMPLETION=${COMPLETION:-$ROOT/packaging/completion/agentctl}
# shellcheck source=/dev/null
source "$COMPLETION"
fails=0 checks=0

# help_entries SECTION [WORDS...]: the names listed under "SECTION:" by `agentctl WORDS --help`
# (options split at the comma, value placeholders dropped), one per line, sorted.
help_entries() {
  local section=$1
  shift
  NO_COLOR=1 "$AGENTCTL" "$@" --help | awk -v want="$section:" '
    /^[A-Z][A-Za-z ]*:$/ { on = ($0 == want); next }
    on && /^  [^ ]/ {
      name = substr($0, 3); sub(/ .*/, "", name)   # "-s,--socket TEXT=..." -> "-s,--socket"
      n = split(name, parts, ",")
      for (i = 1; i <= n; i++) print parts[i]
    }' | sort -u
}

# offered WORDS... CUR: what completing CUR after `agentctl WORDS...` offers, sorted.
offered() {
  COMP_WORDS=(agentctl "$@")
  COMP_CWORD=$(($# ))
  COMPREPLY=()
  _agentctl
  ((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}" | sort -u
  return 0
}

expect_same() {  # DESCRIPTION EXPECTED ACTUAL
  checks=$((checks + 1))
  if [[ $2 != "$3" ]]; then
    echo "FAIL: $1"
    diff <(echo "$2") <(echo "$3") | sed 's/^/    /' || true
    fails=$((fails + 1))
  else
    echo "ok: $1: $(echo "$3" | tr '\n' ' ')"
  fi
}

top_commands=$(help_entries Subcommands)
[[ -n $top_commands ]] || { echo "FAIL: agentctl --help lists no subcommands (parser broken?)"; exit 1; }
expect_same "agentctl <TAB> = the subcommands of agentctl --help" "$top_commands" "$(offered "")"
expect_same "agentctl -<TAB> = the options of agentctl --help" "$(help_entries Options)" "$(offered -)"

for cmd in $top_commands; do
  expect_same "agentctl $cmd -<TAB>" "$(help_entries Options "$cmd")" "$(offered "$cmd" -)"
  expect_same "agentctl $cmd <TAB>" "$(help_entries Subcommands "$cmd")" "$(offered "$cmd" "")"
  for sub in $(help_entries Subcommands "$cmd"); do
    expect_same "agentctl $cmd $sub -<TAB>" "$(help_entries Options "$cmd" "$sub")" "$(offered "$cmd" "$sub" -)"
    expect_same "agentctl $cmd $sub <TAB>" "$(help_entries Subcommands "$cmd" "$sub")" \
      "$(offered "$cmd" "$sub" "")"
  done
done

# Global options and their values are skipped when finding the subcommand.
expect_same "agentctl --socket /x status -<TAB>" "$(help_entries Options status)" \
  "$(offered --socket /x status -)"
expect_same "agentctl --gatekeeper-socket /y gatekeeper <TAB>" "$(help_entries Subcommands gatekeeper)" \
  "$(offered --gatekeeper-socket /y gatekeeper "")"
# explain's positionals do not hide its options.
expect_same "agentctl explain 203.0.113.7 443 -<TAB>" "$(help_entries Options explain)" \
  "$(offered explain 203.0.113.7 443 -)"
# A socket option completes file names.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
touch "$dir/agent.sock"
expect_same "agentctl --socket DIR/ag<TAB> completes files" "$dir/agent.sock" "$(offered --socket "$dir/ag")"
touch "$dir/my agent.sock"
expect_same "a file name with a space is one completion" "$dir/my agent.sock" "$(offered --socket "$dir/my")"

echo "$((checks - fails)) passed, $fails failed"
((fails == 0))
