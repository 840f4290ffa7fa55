#!/usr/bin/env bash
# Installs the Debian 12 packages scepproxy needs to build and test (only the missing ones; idempotent).
#
# Usage: packaging/install_deps.sh [--with GROUP[,GROUP...]]... [--dry-run] [--list]
#   (no option)   the base group: build toolchain, libraries, SCEP test peers, PostgreSQL (store tests),
#                 slowhttptest (slow-client tests), adduser and systemd (the .deb's postinst; systemd-analyze verifies its unit),
#                 clang-format-14 (the style.clang_format test), prometheus (its promtool: the
#                 package.prometheus_rules test; the Prometheus server it brings is stopped and disabled)
#   --with G      also install group G (repeatable or comma-separated): see --list
#   --dry-run     print the missing packages and exit 0 without installing
#   --list        print every group and its packages
# This file is the one place that names packages; quickstart.sh and test/run.sh call it.
set -euo pipefail

# Package groups. To add a group: add a line here; `--with NAME` then installs it.
declare -A GROUPS_PACKAGES=(
    [base]="build-essential cmake pkg-config ccache libssl-dev libevent-dev libyaml-cpp-dev
            prometheus-cpp-dev catch2 libfmt-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev
            nlohmann-json3-dev libsystemd-dev scep sqlite3 python3 curl openssl postgresql
            adduser systemd slowhttptest clang-format-14 prometheus"
    [bench]="nginx wrk nghttp2-client gnuplot-nox strace valgrind"
    [fuzz]="clang-14 libclang-rt-14-dev"
)

usage() {
    sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

list_groups() {
    local group
    for group in $(printf '%s\n' "${!GROUPS_PACKAGES[@]}" | sort); do
        # shellcheck disable=SC2086  # word splitting wanted: one package per word
        echo "$group:" ${GROUPS_PACKAGES[$group]}
    done
}

selected_groups=(base)
dry_run=false
while [[ $# -gt 0 ]]; do
    case "$1" in
        --with)
            [[ $# -ge 2 ]] || { echo "install_deps.sh: --with needs a group name" >&2; exit 2; }
            IFS=',' read -r -a extra <<<"$2"
            selected_groups+=("${extra[@]}")
            shift 2 ;;
        --with=*)
            IFS=',' read -r -a extra <<<"${1#--with=}"
            selected_groups+=("${extra[@]}")
            shift ;;
        --dry-run) dry_run=true; shift ;;
        --list) list_groups; exit 0 ;;
        -h|--help) usage 0 ;;
        *) echo "install_deps.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done

wanted=()
for group in "${selected_groups[@]}"; do
    if [[ -z "${GROUPS_PACKAGES[$group]+set}" ]]; then
        echo "install_deps.sh: unknown group '$group' (have: $(printf '%s\n' "${!GROUPS_PACKAGES[@]}" | sort | paste -sd, | sed 's/,/, /g'))" >&2
        exit 2
    fi
    # shellcheck disable=SC2206  # word splitting wanted
    wanted+=(${GROUPS_PACKAGES[$group]})
done

is_installed() {
    # "install ok installed" is the only state in which the package is usable;
    # dpkg-query fails (exit 1) for packages dpkg has never heard of.
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for package in "${wanted[@]}"; do
    is_installed "$package" || missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install_deps.sh: all ${#wanted[@]} packages already installed (groups: ${selected_groups[*]})"
    exit 0
fi

echo "install_deps.sh: missing: ${missing[*]}"
if $dry_run; then
    exit 0
fi

run_as_root=()
if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        run_as_root=(sudo)
    else
        echo "install_deps.sh: must run as root to install: ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${run_as_root[@]}" apt-get update -q
"${run_as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

# Debian's prometheus package is here for promtool only; it also enables (and, where systemd runs,
# starts) a Prometheus server on :9090. One this script installed is stopped and disabled; a
# Prometheus that was installed before is left alone. Offline (a container without systemd),
# `systemctl disable` only removes the unit's links.
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
    if [[ -d /run/systemd/system ]]; then
        "${run_as_root[@]}" systemctl disable --now prometheus.service \
            || echo "install_deps.sh: warning: could not stop and disable prometheus.service" >&2
    else
        "${run_as_root[@]}" systemctl disable prometheus.service \
            || echo "install_deps.sh: warning: could not disable prometheus.service" >&2
    fi
fi

# Verify rather than trust apt's exit code: a package name that no longer exists must be reported.
still_missing=()
for package in "${missing[@]}"; do
    is_installed "$package" || still_missing+=("$package")
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
    echo "install_deps.sh: still missing after apt-get install: ${still_missing[*]}" >&2
    exit 1
fi
echo "install_deps.sh: installed ${missing[*]}"
