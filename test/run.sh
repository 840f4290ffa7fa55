#!/usr/bin/env bash
# CI/dev entry point: install missing deps, configure and build build/, run every ctest test.
#
# Usage: test/run.sh [CTEST_ARGS...]   e.g. test/run.sh -L integration, test/run.sh -R check
# Environment: SCEPPROXY_BUILD_DIR (default: build), CTEST_PARALLEL (default: 2).
# Exit code: ctest's (or the failing build step's). The last line printed is ctest's summary.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
build_dir="${SCEPPROXY_BUILD_DIR:-build}"

./packaging/install_deps.sh

# RelWithDebInfo: optimised like a release, but with symbols for crash reports.
# ccache is picked up by the top-level CMakeLists.txt when installed.
cmake -S . -B "$build_dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j"$(nproc)"

ctest_log="$build_dir/ctest-output.log"
set +e
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j"${CTEST_PARALLEL:-2}" "$@" 2>&1 | tee "$ctest_log"
ctest_status=${PIPESTATUS[0]}
set -e

# ctest prints its "N% tests passed, M tests failed out of K" line before the list of
# failed tests and the total time: repeat it so it is the very last line of the run.
summary="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$ctest_log" | tail -n 1 || true)"
if [[ -n "$summary" ]]; then
    echo
    echo "$summary"
fi
exit "$ctest_status"
