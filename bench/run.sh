#!/usr/bin/env bash
# bench/run.sh: scepproxy against nginx proxy_pass on this machine; writes RESULTS.md, results.json and ratios.png.
#
# Usage: bench/run.sh [--smoke] [--out DIR] [--scepproxy PATH] [--rate N] [--fixtures DIR]
#   (no option)     the full run (~15 min): bench/results/, from build/proxy/scepproxy (built if needed)
#   --smoke         every stage once, briefly (< 60 s): checks the harness works, asserts nothing about
#                   speed; writes to build/bench-smoke/ unless --out says otherwise
#   --rate N        the fixed request rate of the latency stage (default: half nginx's saturation)
# Installs what it needs (packaging/install_deps.sh --with bench). Run it as root on a quiet machine:
# see bench/README.md for what is measured and how.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

smoke=false
have_out=false
have_binary=false
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=true ;;
        --out|--out=*) have_out=true ;;
        --scepproxy|--scepproxy=*) have_binary=true ;;
        -h|--help) sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    esac
done

./packaging/install_deps.sh --with bench >&2

extra=()
if ! $have_binary; then
    cmake -S . -B build -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build --target scepproxy -j"$(nproc)" >/dev/null
    extra+=(--scepproxy "$repo_root/build/proxy/scepproxy")
fi
if ! $have_out; then
    if $smoke; then extra+=(--out "$repo_root/build/bench-smoke"); else extra+=(--out "$repo_root/bench/results"); fi
fi
exec python3 "$repo_root/bench/bench.py" "${extra[@]}" "$@"
