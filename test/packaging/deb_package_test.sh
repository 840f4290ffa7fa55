#!/usr/bin/env bash
# The Debian package end to end: build it with CPack, install it with dpkg, use it as installed, purge it.
#
# Usage: deb_package_test.sh build BUILD_DIR OUT_DIR   CPack's .deb of BUILD_DIR into OUT_DIR
#        deb_package_test.sh install OUT_DIR           metadata and contents; dpkg -i; user, state
#                                                      directory, admin token; `scepproxy check`, a
#                                                      token issued and `serve` (on loopback) as the
#                                                      scepproxy user; reinstall
#                                                      (idempotent postinst, conffile edits kept);
#                                                      remove (data kept); purge (data gone)
#        deb_package_test.sh systemd-verify OUT_DIR    dpkg -i; systemd-analyze verify and
#                                                      security --offline on the installed unit; purge
# Exit codes: 0 pass, 1 fail, 77 skipped (ctest shows "Skipped" and the reason printed here):
# install and systemd-verify need root (they change the machine: CI runs them as root on a
# fresh machine) and refuse to touch a scepproxy package or config that was there before.
# Every install is purged on exit, so reruns start from the same state.
set -euo pipefail

readonly SKIP=77
readonly CONFIG=/etc/scepproxy/scepproxy.yaml
readonly UNIT=/lib/systemd/system/scepproxy.service
readonly BINARY=/usr/sbin/scepproxy
# systemd-analyze security's exposure score (0 best .. 10): the unit measured 1.5 when written.
readonly MAX_EXPOSURE=2.0

say() { echo "deb_package_test: $*"; }
fail() {
    echo "deb_package_test: FAIL: $*" >&2
    exit 1
}
skip() {
    echo "deb_package_test: SKIPPED: $*"
    exit "$SKIP"
}
expect_eq() {  # expect_eq WHAT ACTUAL EXPECTED
    [[ "$2" == "$3" ]] || fail "$1: got '$2', expected '$3'"
}
expect_contains() {  # expect_contains WHAT TEXT NEEDLE
    [[ "$2" == *"$3"* ]] || fail "$1: '$3' not found in: $2"
}

package_status() { dpkg-query -W -f='${db:Status-Status}' scepproxy 2>/dev/null || echo not-installed; }

the_deb() {
    local out_dir="$1" debs
    mapfile -t debs < <(find "$out_dir" -maxdepth 1 -name 'scepproxy_*.deb')
    [[ ${#debs[@]} -eq 1 ]] || fail "expected one scepproxy_*.deb in $out_dir, found ${#debs[@]} (did package.build_deb run?)"
    echo "${debs[0]}"
}

# --- build ----------------------------------------------------------------------------

build_package() {
    local build_dir="$1" out_dir="$2" started=$SECONDS
    command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps missing (package dpkg-dev, installed with build-essential)"
    rm -rf "$out_dir"
    mkdir -p "$out_dir"
    # cpack, not `--target package`: the build is done, and ctest may run other tests at once.
    cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$out_dir" >"$out_dir/cpack.log" 2>&1 ||
        { cat "$out_dir/cpack.log" >&2; fail "cpack failed"; }
    rm -rf "$out_dir/_CPack_Packages"
    local deb
    deb="$(the_deb "$out_dir")"
    say "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $((SECONDS - started)) s"
    check_metadata "$deb"
    check_contents "$deb"
    say "PASS: metadata and contents"
}

check_metadata() {
    local deb="$1" depends
    expect_eq "Package" "$(dpkg-deb -f "$deb" Package)" scepproxy
    expect_eq "Architecture" "$(dpkg-deb -f "$deb" Architecture)" "$(dpkg --print-architecture)"
    expect_eq "Section" "$(dpkg-deb -f "$deb" Section)" net
    expect_eq "Priority" "$(dpkg-deb -f "$deb" Priority)" optional
    [[ "$(dpkg-deb -f "$deb" Maintainer)" =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]] ||
        fail "Maintainer is not 'Name <email>': $(dpkg-deb -f "$deb" Maintainer)"
    [[ "$(dpkg-deb -f "$deb" Version)" =~ ^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+$ ]] ||
        fail "Version is not UPSTREAM-REVISION: $(dpkg-deb -f "$deb" Version)"
    [[ "$(dpkg-deb -f "$deb" Description | wc -l)" -ge 3 ]] || fail "Description has no long description"
    # dpkg-shlibdeps computed the libraries (names as in Debian 12), adduser for postinst.
    depends="$(dpkg-deb -f "$deb" Depends)"
    for wanted in adduser libc6 libssl3 libevent-2.1-7 libyaml-cpp0.7 libsqlite3-0 \
                  libpq5 libcurl4 libprometheus-cpp-core1.0; do
        [[ ", $depends," == *", $wanted "* || ", $depends," == *", $wanted,"* ]] ||
            fail "Depends lacks $wanted: $depends"
    done
}

check_contents() {
    local deb="$1" listing control
    listing="$(dpkg-deb -c "$deb")"
    for path in ./usr/sbin/scepproxy ./etc/scepproxy/scepproxy.yaml ./lib/systemd/system/scepproxy.service \
                ./usr/share/doc/scepproxy/copyright ./usr/share/doc/scepproxy/changelog.Debian.gz \
                ./usr/share/doc/scepproxy/README.md \
                ./usr/share/doc/scepproxy/scepproxy.example.yaml \
                ./usr/share/doc/scepproxy/grafana/scepproxy-dashboard.json \
                ./usr/share/doc/scepproxy/prometheus/scepproxy-alerts.yml; do
        grep -qE " ${path//./\\.}\$" <<<"$listing" || fail "the package lacks $path"
    done
    grep -qE '^-rwxr-xr-x root/root .* \./usr/sbin/scepproxy$' <<<"$listing" || fail "scepproxy is not root-owned 0755"
    if awk '{print $2}' <<<"$listing" | grep -qv '^root/root$'; then
        fail "files not owned by root/root: $(awk '$2 != "root/root"' <<<"$listing")"
    fi
    # The config is a conffile; the maintainer scripts are executable.
    control="$(dpkg-deb --ctrl-tarfile "$deb" | tar -tvf -)"
    for script in postinst prerm postrm; do
        grep -qE "^-rwxr-xr-x .* \./$script\$" <<<"$control" || fail "control lacks an executable $script: $control"
    done
    expect_eq "conffiles" "$(dpkg-deb -I "$deb" conffiles)" "$CONFIG"
    # A stripped daemon: symbols stay in the build tree. The changelog names this version.
    local tmp sections
    tmp="$(mktemp -d)"
    dpkg-deb -x "$deb" "$tmp"
    expect_eq "changelog.Debian's version" \
        "$(zcat "$tmp/usr/share/doc/scepproxy/changelog.Debian.gz" | dpkg-parsechangelog -l - -S Version 2>&1)" \
        "$(dpkg-deb -f "$deb" Version)"
    sections="$(readelf -S --wide "$tmp/usr/sbin/scepproxy")" || { rm -rf "$tmp"; fail "readelf on the packaged scepproxy"; }
    rm -rf "$tmp"
    grep -qE '\.(debug_info|symtab) ' <<<"$sections" && fail "the packaged scepproxy is not stripped"
    return 0
}

# --- installing on this machine -----------------------------------------------------

installed_by_us=false
serve_pid=""
serve_dir=""
notify_pid=""

# The EXIT trap: a daemon the test started is killed, a package it installed purged.
purge_package() {
    local pid
    for pid in "$serve_pid" "$notify_pid"; do
        [[ -z "$pid" ]] || kill -KILL "$pid" 2>/dev/null || true
    done
    serve_pid=""
    notify_pid=""
    [[ -z "$serve_dir" ]] || rm -rf "$serve_dir"
    if $installed_by_us; then
        dpkg --purge scepproxy >/dev/null 2>&1 || echo "deb_package_test: dpkg --purge scepproxy failed" >&2
        installed_by_us=false
    fi
}

# Root, dpkg, and a machine without a scepproxy of its own; one package test at a time.
prepare_machine() {
    [[ $EUID -eq 0 ]] || skip "needs root: it installs and purges the .deb on this machine (CI runs it as root)"
    command -v dpkg >/dev/null || skip "no dpkg: not a Debian system"
    exec 9>/run/lock/scepproxy-deb-package-test.lock
    flock -w 600 9 || fail "another package test held the lock for 10 minutes"
    local status
    status="$(package_status)"
    [[ "$status" == not-installed ]] ||
        skip "a scepproxy package is on this machine already (dpkg status '$status'); the test would replace and purge it. Remove it first: dpkg --purge scepproxy"
    [[ ! -e /etc/scepproxy ]] ||
        skip "/etc/scepproxy exists without the package; the test would install over it and purge it. Move it away first."
    trap purge_package EXIT
}

dpkg_install() {
    local deb="$1" output
    # Other processes (apt) may hold dpkg's lock for a moment: retry, bounded.
    for _ in 1 2 3 4 5 6; do
        if output="$(DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" 2>&1)"; then
            installed_by_us=true
            return 0
        fi
        installed_by_us=true  # a half-installed package must be purged too
        [[ "$output" == *"lock"* ]] || { echo "$output" >&2; fail "dpkg -i $(basename "$deb") failed"; }
        sleep 5
    done
    echo "$output" >&2
    fail "dpkg -i: dpkg's lock stayed busy"
}

as_scepproxy() { runuser -u scepproxy -- "$@"; }

check_installed_state() {
    expect_eq "package status" "$(package_status)" installed
    local entry uid shell home
    entry="$(getent passwd scepproxy)" || fail "no scepproxy user after install"
    IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
    ((uid < 1000)) || fail "scepproxy is not a system user (uid $uid)"
    expect_eq "scepproxy's shell" "$shell" /usr/sbin/nologin
    expect_eq "scepproxy's home" "$home" /var/lib/scepproxy
    getent group scepproxy >/dev/null || fail "no scepproxy group"
    expect_eq "/var/lib/scepproxy" "$(stat -c '%U:%G %a' /var/lib/scepproxy)" "scepproxy:scepproxy 750"
    expect_eq "admin.token" "$(stat -c '%U:%G %a' /etc/scepproxy/admin.token)" "root:scepproxy 640"
    [[ "$(head -n 1 /etc/scepproxy/admin.token)" =~ ^[0-9a-f]{64}$ ]] || fail "admin.token is not 64 hex digits"
    expect_eq "$CONFIG" "$(stat -c '%U:%G %a' "$CONFIG")" "root:root 644"
    [[ -x "$BINARY" ]] || fail "$BINARY is not executable"
}

# Sets issued_token to the token it issued.
issued_token=""
check_as_installed() {
    local output
    # What the unit's ExecStartPre runs, as the user it runs as.
    output="$(as_scepproxy "$BINARY" check -c "$CONFIG" 2>&1)" || fail "scepproxy check on the installed config: $output"
    expect_eq "scepproxy check" "$output" "$CONFIG: ok"
    say "scepproxy check -c $CONFIG as the scepproxy user: ok"
    # The scepproxy user can create the store in its state directory and use it.
    output="$(as_scepproxy "$BINARY" token issue -c "$CONFIG" --profile ndes --device ci-package-test 2>&1)" ||
        fail "token issue as the scepproxy user: $output"
    expect_contains "token issue" "$output" '"scep_url": "http://scep.example.invalid:8080/scep/'
    local token
    token="$(sed -n 's/.*"token": "\([0-9a-f-]*\)".*/\1/p' <<<"$output")"
    [[ -n "$token" ]] || fail "no token in: $output"
    output="$(as_scepproxy "$BINARY" token show -c "$CONFIG" "$token" 2>&1)" || fail "token show: $output"
    expect_contains "token show" "$output" '"state": "active"'
    expect_eq "enrollments.db" "$(stat -c '%U:%G' /var/lib/scepproxy/enrollments.db)" scepproxy:scepproxy
    # The service user can't change its own configuration.
    if as_scepproxy sh -c "echo x >> $CONFIG" 2>/dev/null; then fail "the scepproxy user can write $CONFIG"; fi
    serve_as_installed "$token"
    issued_token="$token"
}

# wait_for_notification LOG COUNT PATTERN: LOG has COUNT lines matching PATTERN within 10 s.
wait_for_notification() {
    for _ in $(seq 1 100); do
        [[ "$(grep -cE "$3" "$1")" -ge "$2" ]] && return 0
        sleep 0.1
    done
    echo "--- notifications received:" >&2
    cat "$1" >&2
    fail "no $2 notification(s) matching '$3' on NOTIFY_SOCKET within 10 s (the unit is Type=notify)"
}

# `scepproxy serve` as the scepproxy user on the installed config, its listeners moved to
# loopback port 0 (a CI machine may use 8080, 9443 or 9444) and its placeholder upstream (which
# serve rightly refuses: the name doesn't resolve) to a closed loopback port: it starts, knows
# the token issued above, serves /metrics and /healthz, tells NOTIFY_SOCKET READY=1, reloads
# on SIGHUP (RELOADING=1, READY=1), and drains on SIGTERM (STOPPING=1).
serve_as_installed() {
    local token="$1" dir address metrics status
    dir="$(mktemp -d)"
    serve_dir="$dir"
    chmod 0755 "$dir"
    sed -E -e 's/^(  listen: )"[^"]*"/\1"127.0.0.1:0"/' \
        -e 's#"https://ndes\.example\.invalid/#"http://127.0.0.1:9/#' "$CONFIG" >"$dir/scepproxy.yaml"
    grep -q '"http://127.0.0.1:9/certsrv/mscep/mscep.dll"' "$dir/scepproxy.yaml" ||
        fail "no placeholder upstream https://ndes.example.invalid/... in $CONFIG"
    [[ "$(grep -c '^  listen: "127.0.0.1:0"' "$dir/scepproxy.yaml")" -eq 3 ]] ||
        fail "expected three listen keys (scep, admin, metrics) in $CONFIG"
    # The unit is Type=notify: systemd waits for READY=1. A NOTIFY_SOCKET of our own receives
    # what the daemon tells it.
    "$(dirname "$0")/notify_receiver.py" "$dir/notify.sock" "$dir/notify.log" 60 9>&- &
    notify_pid=$!
    for _ in $(seq 1 100); do [[ -S "$dir/notify.sock" ]] && break; sleep 0.1; done
    [[ -S "$dir/notify.sock" ]] || fail "notify_receiver.py made no socket within 10 s"
    # setpriv execs the daemon (no runuser parent), so $! is the daemon's pid. It must not
    # inherit the lock (fd 9), or a daemon left behind would block the next run.
    NOTIFY_SOCKET="$dir/notify.sock" setpriv --reuid=scepproxy --regid=scepproxy --init-groups -- \
        "$BINARY" serve -c "$dir/scepproxy.yaml" >"$dir/out.log" 2>&1 9>&- &
    serve_pid=$!
    local pid=$serve_pid
    for _ in $(seq 1 200); do  # 20 s at most
        address="$(sed -n 's/.*event=listening listener=scep address=\([0-9.:]*\).*/\1/p' "$dir/out.log")"
        [[ -n "$address" ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$address" ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        cat "$dir/out.log" >&2
        fail "scepproxy serve on the installed config did not start listening within 20 s"
    fi
    metrics="$(sed -n 's/.*event=listening listener=metrics address=\([0-9.:]*\).*/\1/p' "$dir/out.log")"
    status="$(curl -s -o /dev/null -w '%{http_code}' "http://$address/scep/$token?operation=GetCACaps")"
    # Nothing listens upstream: the proxy knew the token and tried the upstream (502), it did
    # not refuse the token (403).
    expect_eq "GetCACaps with the issued token (nothing listens upstream)" "$status" 502
    expect_eq "/healthz on the metrics listener" "$(curl -s "http://$metrics/healthz")" ok
    [[ "$(curl -s "http://$metrics/metrics")" == *$'\n'scepproxy_build_info\{* ]] || fail "no scepproxy_build_info on /metrics"
    wait_for_notification "$dir/notify.log" 1 '^READY=1'
    # What `systemctl reload` does after its check (ExecReload=/bin/kill -HUP $MAINPID).
    kill -HUP "$pid"
    wait_for_notification "$dir/notify.log" 1 '^RELOADING=1'
    wait_for_notification "$dir/notify.log" 2 '^READY=1'
    kill -TERM "$pid"
    for _ in $(seq 1 150); do  # 15 s at most
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        fail "scepproxy did not exit within 15 s of SIGTERM"
    fi
    local exit_code=0
    wait "$pid" || exit_code=$?
    serve_pid=""
    [[ $exit_code -eq 0 ]] || { cat "$dir/out.log" >&2; fail "scepproxy serve exited with $exit_code after SIGTERM"; }
    wait_for_notification "$dir/notify.log" 1 '^STOPPING=1'
    kill "$notify_pid" 2>/dev/null || true
    wait "$notify_pid" 2>/dev/null || true
    notify_pid=""
    rm -rf "$dir"
    say "scepproxy serve as the scepproxy user on the installed config: listened, answered, READY=1, reloaded on SIGHUP, STOPPING=1 and exit 0 on SIGTERM"
}

run_install() {
    local out_dir="$1" deb started=$SECONDS uid_before token_before token
    deb="$(the_deb "$out_dir")"
    prepare_machine
    dpkg_install "$deb"
    say "dpkg -i $(basename "$deb"): installed in $((SECONDS - started)) s"
    check_installed_state
    check_as_installed
    token="$issued_token"

    # Reinstalling runs postinst again (configure with the old version): nothing is recreated,
    # the administrator's conffile edit stays (dpkg keeps a changed conffile the package didn't change).
    uid_before="$(id -u scepproxy)"
    token_before="$(cat /etc/scepproxy/admin.token)"
    echo "# edited by deb_package_test" >> "$CONFIG"
    dpkg_install "$deb"
    check_installed_state
    expect_eq "scepproxy's uid after reinstall" "$(id -u scepproxy)" "$uid_before"
    expect_eq "admin.token after reinstall" "$(cat /etc/scepproxy/admin.token)" "$token_before"
    [[ "$(tail -n 1 "$CONFIG")" == "# edited by deb_package_test" ]] || fail "reinstall replaced the edited conffile"
    as_scepproxy "$BINARY" token show -c "$CONFIG" "$token" >/dev/null || fail "the token issued before the reinstall is gone"
    say "reinstall: user, admin token, data and the conffile edit kept"

    # remove: the program goes, configuration and data stay.
    dpkg --remove scepproxy >/dev/null || fail "dpkg --remove failed"
    expect_eq "status after remove" "$(package_status)" config-files
    [[ ! -e "$BINARY" && ! -e "$UNIT" ]] || fail "dpkg --remove left the binary or the unit"
    [[ -f "$CONFIG" && -f /etc/scepproxy/admin.token && -f /var/lib/scepproxy/enrollments.db ]] ||
        fail "dpkg --remove deleted configuration or data"
    # purge: configuration, token and data go; the system user stays (Debian's convention).
    dpkg --purge scepproxy >/dev/null || fail "dpkg --purge failed"
    installed_by_us=false
    expect_eq "status after purge" "$(package_status)" not-installed
    [[ ! -e /etc/scepproxy && ! -e /var/lib/scepproxy ]] || fail "purge left /etc/scepproxy or /var/lib/scepproxy"
    getent passwd scepproxy >/dev/null || fail "purge removed the scepproxy user (Debian keeps system users)"
    say "remove kept configuration and data; purge deleted them"
    say "PASS: install, use as the scepproxy user, reinstall, remove, purge in $((SECONDS - started)) s"
}

run_systemd_verify() {
    local out_dir="$1" deb output exposure
    deb="$(the_deb "$out_dir")"
    command -v systemd-analyze >/dev/null ||
        skip "systemd-analyze is not installed (package systemd): the unit was NOT verified"
    prepare_machine
    dpkg_install "$deb"
    # Offline: checks the unit's syntax, its executables and dependencies without a running systemd.
    output="$(systemd-analyze verify --man=no "$UNIT" 2>&1)" || { echo "$output" >&2; fail "systemd-analyze verify $UNIT"; }
    if grep -q 'scepproxy' <<<"$output"; then
        echo "$output" >&2
        fail "systemd-analyze verify warns about the unit"
    fi
    say "systemd-analyze verify $UNIT: no errors, no warnings"
    output="$(systemd-analyze security --offline=true "$UNIT" 2>&1)" || { echo "$output" >&2; fail "systemd-analyze security"; }
    exposure="$(sed -n 's/.*Overall exposure level for scepproxy.service: \([0-9.]*\).*/\1/p' <<<"$output")"
    [[ -n "$exposure" ]] || { echo "$output" >&2; fail "no exposure level in systemd-analyze security's output"; }
    awk -v e="$exposure" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(e <= max) }' ||
        { grep '✗' <<<"$output" >&2 || true; fail "exposure level $exposure is above $MAX_EXPOSURE"; }
    say "systemd-analyze security --offline: exposure $exposure (at most $MAX_EXPOSURE)"
    if [[ ! -d /run/systemd/system ]]; then
        say "note: systemd is not running here (container): the unit was verified offline, not started"
    fi
    purge_package
    say "PASS: systemd-analyze verify and security on the installed unit"
}

case "${1:-}" in
    build) [[ $# -eq 3 ]] || fail "usage: $0 build BUILD_DIR OUT_DIR"; build_package "$2" "$3" ;;
    install) [[ $# -eq 2 ]] || fail "usage: $0 install OUT_DIR"; run_install "$2" ;;
    systemd-verify) [[ $# -eq 2 ]] || fail "usage: $0 systemd-verify OUT_DIR"; run_systemd_verify "$2" ;;
    *) sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
