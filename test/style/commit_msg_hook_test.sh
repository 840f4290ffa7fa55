#!/usr/bin/env bash
# The commit-msg hook (.githooks/commit-msg) on sample messages: what it refuses and what it lets through.
# Usage: commit_msg_hook_test.sh REPO_ROOT
set -uo pipefail

hook="$1/.githooks/commit-msg"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

# expect accept|refuse NAME MESSAGE
expect() {
    local verdict="$1" name="$2"
    printf '%s' "$3" >"$work/message"
    if "$hook" "$work/message" 2>"$work/stderr"; then got=accept; else got=refuse; fi
    if [[ "$got" == "$verdict" ]]; then
        echo "ok: $name ($got)"
    else
        echo "FAIL: $name: expected $verdict, got $got; stderr: $(cat "$work/stderr")"
        failures=$((failures + 1))
    fi
}

subject72="proxy: $(printf 'x%.0s' $(seq 65))"  # 7 + 65 = 72 characters
subject73="${subject72}y"
[[ ${#subject72} -eq 72 && ${#subject73} -eq 73 ]] || { echo "FAIL: the test's own subjects"; exit 1; }

expect accept "72-character subject, blank line, body" "$subject72"$'\n\nwhy, and what was measured\n'
expect refuse "73-character subject" "$subject73"$'\n\nwhy\n'
expect refuse "73-character subject without a body" "$subject73"$'\n'
expect accept "subject alone" $'net: one line\n'
expect refuse "body without a blank line after the subject" $'net: what\nwhy, on the second line\n'
expect accept "git's comment lines are not the message" $'# Please enter the commit message\nnet: what\n\nwhy\n# a comment\n'
expect accept "a 72-character UTF-8 subject counts characters, not bytes" "net: $(printf 'é%.0s' $(seq 67))"$'\n\nwhy\n'
expect accept "merge subject git writes" "Merge branch 'feature/a-very-long-branch-name-that-goes-on-and-on' of https://example.org/scepproxy"$'\n'
expect accept "revert subject git writes" "Revert \"$subject72\""$'\n\nThis reverts commit 0123456789abcdef.\n'
expect accept "fixup subject" "fixup! $subject72"$'\n'
expect accept "below the scissors line of commit -v" $'net: what\n\nwhy\n# ------------------------ >8 ------------------------\ndiff --git a/x b/x\n'

if [[ $failures -ne 0 ]]; then
    echo "$failures case(s) failed"
    exit 1
fi
echo "all cases passed"
