#!/usr/bin/env bash
# Starts and stops a throw-away PostgreSQL server for tests: unix socket only, trust auth, data under /tmp.
#
# Usage: test/postgres_server.sh COMMAND STATE_DIR
#   start   create a new cluster and start it; writes STATE_DIR/conninfo (a libpq
#           connection string) and prints it. A server left from an earlier start is
#           stopped and removed first.
#   stop    stop the server and remove its data (idempotent)
#   down    stop the server, keep its data (to test a store outage)
#   up      start it again after `down`
#   pid     print the postmaster's pid
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user that
# Debian's package creates (runuser); otherwise as the caller. The data directory lives
# under /tmp (not STATE_DIR) so the postgres user can reach it whatever STATE_DIR's
# parents allow, and the socket path stays short.
set -euo pipefail

usage() {
    sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
command="$1"
state_dir="$2"

# pg_config (libpq-dev) knows the server's bin directory; else the newest installed one.
bin_dir=""
if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/pg_ctl" ]]; then
    bin_dir="$(pg_config --bindir)"
else
    bin_dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [[ -z "$bin_dir" || ! -x "$bin_dir/pg_ctl" || ! -x "$bin_dir/initdb" ]]; then
    echo "postgres_server.sh: no PostgreSQL server found (install the postgresql package: packaging/install_deps.sh)" >&2
    exit 1
fi

as_server_user() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

data_root() {
    [[ -f "$state_dir/data_root" ]] && cat "$state_dir/data_root"
}

pg_ctl_start() {
    local root="$1"
    # Settings for a disposable test server: no durability, no TCP, a socket in its own directory.
    as_server_user "$bin_dir/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$root' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null
}

pg_ctl_stop() {
    local root="$1"
    [[ -d "$root/data" ]] || return 0
    as_server_user "$bin_dir/pg_ctl" -D "$root/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

case "$command" in
    start)
        mkdir -p "$state_dir"
        if old="$(data_root)"; then
            pg_ctl_stop "$old"
            rm -rf "$old"
        fi
        root="$(mktemp -d /tmp/scepproxy-pg.XXXXXX)"
        [[ $EUID -eq 0 ]] && chown postgres: "$root"
        echo "$root" >"$state_dir/data_root"
        if ! as_server_user "$bin_dir/initdb" -D "$root/data" --auth=trust --username=postgres \
                --encoding=UTF8 --locale=C --no-sync >"$root/initdb.log" 2>&1; then
            cat "$root/initdb.log" >&2
            exit 1
        fi
        if ! pg_ctl_start "$root"; then
            cat "$root/server.log" >&2 || true
            exit 1
        fi
        echo "host=$root dbname=postgres user=postgres" >"$state_dir/conninfo"
        cat "$state_dir/conninfo"
        ;;
    stop)
        if root="$(data_root)"; then
            pg_ctl_stop "$root"
            rm -rf "$root"
        fi
        rm -f "$state_dir/data_root" "$state_dir/conninfo"
        ;;
    down)
        root="$(data_root)" || { echo "postgres_server.sh: no server in $state_dir" >&2; exit 1; }
        pg_ctl_stop "$root"
        ;;
    up)
        root="$(data_root)" || { echo "postgres_server.sh: no server in $state_dir" >&2; exit 1; }
        pg_ctl_start "$root" || { cat "$root/server.log" >&2 || true; exit 1; }
        ;;
    pid)
        root="$(data_root)" || { echo "postgres_server.sh: no server in $state_dir" >&2; exit 1; }
        head -n 1 "$root/data/postmaster.pid"
        ;;
    *)
        usage
        ;;
esac
