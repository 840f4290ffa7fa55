#!/usr/bin/env bash
# Runs a sanitizer build tree's ctest with ASan/LSan reports written to files, and fails if any report appears.
#
# Usage: sanitized_ctest.sh BUILD_DIR CTEST_ARGS...
# Why files: a daemon started by an integration test writes its stderr into a temp dir that the
# test removes, and a leak found at exit only changes an exit code nobody may check. With
# log_path every process built with ASan (unit tests, fuzzers, the daemon, its CLI) leaves its
# report in one directory, which must be empty at the end. UBSan is built with
# -fno-sanitize-recover, so its first report aborts the process and fails the test itself
# (gcc's runtime prints it on stderr whatever log_path says).
set -uo pipefail

build_dir="$1"
shift
# One directory per run: two runs on the same tree (unit, integration) may overlap.
reports="$(mktemp -d "$build_dir/sanitizer-reports.XXXXXX")"

# halt_on_error: the first report ends the process (UBSan is built with -fno-sanitize-recover too).
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:halt_on_error=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

ctest --test-dir "$build_dir" --output-on-failure --no-tests=error "$@"
ctest_status=$?

shopt -s nullglob
found=("$reports"/*)
if [[ ${#found[@]} -gt 0 ]]; then
    for report in "${found[@]}"; do
        echo "=== sanitizer report $report"
        cat "$report"
    done
    echo "sanitized_ctest.sh: ${#found[@]} sanitizer report(s) in $reports" >&2
    exit 1
fi
rmdir "$reports"
exit "$ctest_status"
