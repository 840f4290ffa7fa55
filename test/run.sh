#!/usr/bin/env bash
# CI/dev entry point: install missing deps, configure and build build/, run every ctest test.
#
# Usage: test/run.sh [CTEST_ARGS...]   e.g. test/run.sh -L integration, test/run.sh -R check
# Environment: SCEPPROXY_BUILD_DIR (default: build), CTEST_PARALLEL (default: 2),
#   SCEPPROXY_SANITIZERS (1: always, 0: never; default: only when no CTEST_ARGS narrow the run),
#   SCEPPROXY_FUZZ_SECONDS (default: 60, per fuzz target),
#   SCEPPROXY_SANITIZE_INTEGRATION (default: 1; 0 skips the integration tests under ASan+UBSan).
# Exit code: ctest's (or the failing build step's). The last line printed is ctest's summary.
#
# Sanitizer stages (on by default): the unit tests and fuzz corpus replays are built once more
# with ASan+UBSan in BUILD-asan/ (gcc), and every libFuzzer target with ASan+UBSan in
# BUILD-fuzz/ (clang); the integration tests run once more against the ASan+UBSan daemon. The
# main ctest runs them as tests sanitize.unit, sanitize.integration and sanitize.fuzz (label
# sanitize), so the one summary covers them and any sanitizer report or fuzz finding fails it
# (see test/fuzz/README.md).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
build_dir="${SCEPPROXY_BUILD_DIR:-build}"

run_sanitizers="${SCEPPROXY_SANITIZERS:-}"
if [[ -z "$run_sanitizers" ]]; then
    if [[ $# -eq 0 ]]; then run_sanitizers=1; else run_sanitizers=0; fi
fi
if [[ "$run_sanitizers" == 1 ]]; then
    ./packaging/install_deps.sh --with fuzz,bench
else
    ./packaging/install_deps.sh --with bench  # bench: the bench.smoke test (nginx, wrk, h2load, ...)
fi

# Empty values unregister the sanitize.* tests (the cache would otherwise keep old paths).
sanitizer_options=(-DSCEPPROXY_SANITIZED_BUILD_DIR= -DSCEPPROXY_FUZZ_BUILD_DIR=)
if [[ "$run_sanitizers" == 1 ]]; then
    asan_dir="$(realpath -m "$build_dir-asan")"
    fuzz_dir="$(realpath -m "$build_dir-fuzz")"
    sanitizer_options=(-DSCEPPROXY_SANITIZED_BUILD_DIR="$asan_dir" -DSCEPPROXY_FUZZ_BUILD_DIR="$fuzz_dir"
                       -DSCEPPROXY_SANITIZED_INTEGRATION="${SCEPPROXY_SANITIZE_INTEGRATION:-1}")
fi

# RelWithDebInfo: optimised like a release, but with symbols for crash reports.
# ccache is picked up by the top-level CMakeLists.txt when installed.
cmake -S . -B "$build_dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${sanitizer_options[@]}"
cmake --build "$build_dir" -j"$(nproc)"

if [[ "$run_sanitizers" == 1 ]]; then
    cmake -S . -B "$asan_dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSCEPPROXY_SANITIZE=ON \
        -DSCEPPROXY_SANITIZED_BUILD_DIR= -DSCEPPROXY_FUZZ_BUILD_DIR=
    cmake --build "$asan_dir" -j"$(nproc)"
    cmake -S . -B "$fuzz_dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DSCEPPROXY_FUZZ=ON -DSCEPPROXY_SANITIZE=ON \
        -DSCEPPROXY_FUZZ_SECONDS="${SCEPPROXY_FUZZ_SECONDS:-60}"
    cmake --build "$fuzz_dir" --target fuzz_targets -j"$(nproc)"
fi

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
