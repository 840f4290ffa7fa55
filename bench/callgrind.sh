#!/usr/bin/env bash
# bench/callgrind.sh: instructions per request of the proxied PKIOperation (POST and GET) and GetCACert paths (valgrind callgrind).
#
# Usage: bench/callgrind.sh [SHORT LONG] [--scepproxy PATH] [--fixtures DIR]
# Runs scepproxy (1 worker, sqlite store, access log off) under callgrind twice per path, for SHORT and
# LONG requests (default 200 and 1200) sent one after another on one keep-alive connection, against
# the same fixed-answer nginx upstream as bench/run.sh, and prints (Ir(LONG) - Ir(SHORT)) / (LONG - SHORT):
# start-up, the first (cold) request and shutdown cancel out. Instruction counts don't depend on the
# machine's load, so this is the figure to compare before and after a change.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

short=200
long=1200
if [[ $# -ge 2 && "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]]; then
    short=$1
    long=$2
    shift 2
fi
case "${1:-}" in -h|--help) sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
# run.sh installs what is needed and builds scepproxy when no --scepproxy is given.
exec "$repo_root/bench/run.sh" --callgrind "$short" "$long" "$@"
