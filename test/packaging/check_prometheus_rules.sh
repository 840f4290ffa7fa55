#!/usr/bin/env bash
# packaging/prometheus/ with promtool: the alert rules load (check rules), their unit tests pass (test rules), every alert has one.
#
# Usage: check_prometheus_rules.sh [REPO_ROOT]   (default: two directories up from this file)
# The rules are packaging/prometheus/*.yml but *.test.yml, the promtool unit tests *.test.yml.
# Fails (exit 1) without promtool: packaging/install_deps.sh installs it (Debian's prometheus).
set -euo pipefail

root="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)"
dir="$root/packaging/prometheus"

fail() {
    echo "check_prometheus_rules.sh: $*" >&2
    exit 1
}

command -v promtool >/dev/null 2>&1 \
    || fail "promtool not found: packaging/install_deps.sh installs it (Debian package prometheus)"

rules=()
tests=()
for path in "$dir"/*.yml; do
    case "$path" in
        *.test.yml) tests+=("$path") ;;
        *) rules+=("$path") ;;
    esac
done
[[ ${#rules[@]} -gt 0 ]] || fail "no rules files in $dir"
[[ ${#tests[@]} -gt 0 ]] || fail "no *.test.yml unit tests in $dir"

promtool check rules "${rules[@]}"
# The tests name their rule files relative to themselves.
(cd "$dir" && promtool test rules "${tests[@]##*/}")

# promtool passes a test of an alert name that no rule has (nothing fires, as `exp_alerts: []`
# expects), and says nothing about alerts without tests: compare the two lists.
alerts="$(sed -n 's/^[ -]*alert: *\([A-Za-z0-9_]*\).*/\1/p' "${rules[@]}" | sort -u)"
tested="$(sed -n 's/^[ -]*alertname: *\([A-Za-z0-9_]*\).*/\1/p' "${tests[@]}" | sort -u)"
[[ -n "$alerts" ]] || fail "found no '- alert: NAME' lines in ${rules[*]}"
untested="$(comm -23 <(echo "$alerts") <(echo "$tested"))"
unknown="$(comm -13 <(echo "$alerts") <(echo "$tested"))"
[[ -z "$untested" ]] || fail "alerts without a unit test in ${tests[*]##*/}: $(echo "$untested" | paste -sd' ')"
[[ -z "$unknown" ]] || fail "unit tests of alerts no rule defines: $(echo "$unknown" | paste -sd' ')"
echo "check_prometheus_rules.sh: $(echo "$alerts" | wc -l) alerts, each with a unit test"
