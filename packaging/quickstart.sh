#!/usr/bin/env bash
# Quickstart: builds scepproxy and runs it in front of a throw-away scepserver CA, then issues a demo enrollment token.
#
# Usage: packaging/quickstart.sh [--check] [--port PORT]
#   (default)     print the SCEP URL, token, challenge and a scepclient command, then serve
#                 in the foreground until Ctrl-C
#   --check       enroll once with scepclient through the proxy, verify the certificate,
#                 stop everything; exit 0 on success
#   --port PORT   the proxy's SCEP port on 127.0.0.1 (default 8080)
# Environment:
#   SCEPPROXY_DEMO_DIR   state directory, recreated on every run (default: ./.quickstart)
#   SCEPPROXY_BUILD_DIR  CMake build directory (default: <repo>/build)
#   SCEPPROXY_BIN        use this scepproxy binary: skips installing packages and building
set -euo pipefail

usage() {
    sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

say() { echo "quickstart: $*"; }
fail() {
    echo "quickstart: error: $*" >&2
    exit 1
}

check=false
proxy_port=8080
while [[ $# -gt 0 ]]; do
    case "$1" in
        --check) check=true; shift ;;
        --port)
            [[ $# -ge 2 ]] || fail "--port needs a number"
            proxy_port="$2"; shift 2 ;;
        --port=*) proxy_port="${1#--port=}"; shift ;;
        -h|--help) usage 0 ;;
        *) echo "quickstart: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
if ! [[ "$proxy_port" =~ ^[0-9]{1,5}$ ]] || ((10#$proxy_port < 1 || 10#$proxy_port > 65535)); then
    fail "--port must be a number from 1 to 65535, not '$proxy_port'"
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_dir="$(realpath -m "${SCEPPROXY_DEMO_DIR:-$PWD/.quickstart}")"
build_dir="$(realpath -m "${SCEPPROXY_BUILD_DIR:-$repo_root/build}")"
state_marker="$state_dir/.scepproxy-quickstart"

# --- 1. packages and the binary -------------------------------------------------
if [[ -n "${SCEPPROXY_BIN:-}" ]]; then
    scepproxy_bin="$(realpath -m "$SCEPPROXY_BIN")"
    [[ -x "$scepproxy_bin" ]] || fail "SCEPPROXY_BIN=$SCEPPROXY_BIN is not an executable file"
else
    "$repo_root/packaging/install_deps.sh"
    say "building scepproxy in $build_dir"
    cmake -S "$repo_root" -B "$build_dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build_dir" --target scepproxy -j"$(nproc)"
    scepproxy_bin="$build_dir/proxy/scepproxy"
fi
for tool in scepserver scepclient openssl curl python3; do
    command -v "$tool" >/dev/null || fail "'$tool' not found (packaging/install_deps.sh installs it)"
done

# --- 2. a fresh state directory ---------------------------------------------------
# A previous run killed without its cleanup may have left its servers running: stop
# them, but only processes whose command line names this state directory.
stop_recorded_processes() {
    local pid_file pid
    for pid_file in "$state_dir"/*.pid; do
        [[ -f "$pid_file" ]] || continue
        pid="$(cat "$pid_file")"
        if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$state_dir"; then
            say "stopping process $pid left over from a previous run"
            stop_process "$pid"
        fi
    done
}

# SIGTERM, up to 5 s to exit, then SIGKILL.
stop_process() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

if [[ -d "$state_dir" ]]; then
    if [[ ! -f "$state_marker" ]] && [[ -n "$(ls -A "$state_dir")" ]]; then
        fail "$state_dir exists and was not made by quickstart.sh: refusing to delete it (set SCEPPROXY_DEMO_DIR)"
    fi
    stop_recorded_processes
    rm -rf "$state_dir"
fi
mkdir -p "$state_dir"
touch "$state_marker"

started_pids=()
cleanup() {
    local pid
    for pid in "${started_pids[@]}"; do
        stop_process "$pid"
        wait "$pid" 2>/dev/null || true
    done
    rm -f "$state_dir"/*.pid
}
trap cleanup EXIT
trap 'echo; say "stopping"; exit 0' INT
trap 'exit 143' TERM

# wait_for DESCRIPTION SECONDS PID LOG COMMAND...: runs COMMAND until it succeeds;
# fails (showing LOG) when PID exits or SECONDS pass.
wait_for() {
    local what="$1" seconds="$2" pid="$3" log="$4" i
    shift 4
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "--- $log ---" >&2
            tail -n 30 "$log" >&2 || true
            fail "$what: the process exited"
        fi
        sleep 0.1
    done
    echo "--- $log ---" >&2
    tail -n 30 "$log" >&2 || true
    fail "$what: not ready after ${seconds}s"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# --- 3. the demo CA: scepserver with a static challenge ------------------------------
ca_challenge="$(openssl rand -hex 12)"
printf '%s\n' "$ca_challenge" >"$state_dir/challenge"
chmod 600 "$state_dir/challenge"
say "creating a demo CA in $state_dir/depot"
scepserver ca -init -depot "$state_dir/depot" -keySize 2048 -organization "scepproxy quickstart" \
    >"$state_dir/ca-init.log" 2>&1 || { cat "$state_dir/ca-init.log" >&2; fail "scepserver ca -init failed"; }

ca_port="$(free_port)"
# scepserver binds every interface (it has no address option); the demo CA is throw-away.
scepserver -depot "$state_dir/depot" -port "$ca_port" -challenge "$ca_challenge" \
    >"$state_dir/scepserver.log" 2>&1 &
started_pids+=($!)
echo $! >"$state_dir/scepserver.pid"
wait_for "scepserver on port $ca_port" 15 $! "$state_dir/scepserver.log" \
    curl -fsS --max-time 2 "http://127.0.0.1:$ca_port/scep?operation=GetCACaps"
say "scepserver (demo CA) listening on port $ca_port"

# --- 4. the proxy ------------------------------------------------------------------
config="$state_dir/scepproxy.yaml"
cat >"$config" <<EOF
# scepproxy quickstart config (generated by packaging/quickstart.sh; recreated on every run)
workers: 2
scep:
  listen: "127.0.0.1:$proxy_port"
  public_url: "http://127.0.0.1:$proxy_port"
store:
  backend: sqlite
  sqlite: { path: $state_dir/enrollments.db }
profiles:
  demo:
    upstreams:
      - url: "http://127.0.0.1:$ca_port/scep"
    connect_timeout: 2s
    timeout: 10s
    challenge: { type: static, password_file: $state_dir/challenge }
EOF
"$scepproxy_bin" check -c "$config" || fail "the generated config $config does not check"

proxy_log="$state_dir/scepproxy.log"
"$scepproxy_bin" serve -c "$config" >"$proxy_log" 2>&1 &
proxy_pid=$!
started_pids+=("$proxy_pid")
echo "$proxy_pid" >"$state_dir/scepproxy.pid"
wait_for "scepproxy on 127.0.0.1:$proxy_port (is the port free?)" 15 "$proxy_pid" "$proxy_log" \
    grep -qE 'event=listening .*listener=scep' "$proxy_log"
say "scepproxy listening on 127.0.0.1:$proxy_port (log: $proxy_log)"

# --- 5. an enrollment token -----------------------------------------------------------
issued="$("$scepproxy_bin" token issue -c "$config" --profile demo --device demo-device)" \
    || fail "scepproxy token issue failed"
json_field() {
    python3 -c 'import json, sys; value = json.load(sys.stdin)[sys.argv[1]]; print("" if value is None else value)' "$1" <<<"$issued"
}
token="$(json_field token)"
scep_url="$(json_field scep_url)"
challenge="$(json_field challenge)"
expires_at="$(json_field expires_at)"

client_dir="$state_dir/scepclient"
client_command="mkdir -p '$client_dir' && cd '$client_dir' && scepclient -server-url '$scep_url' -challenge '$challenge' -private-key key.pem -cn demo-device"

if ! $check; then
    cat <<EOF

  SCEP URL:   $scep_url
  token:      $token   (expires $expires_at)
  challenge:  $challenge

  Enroll by hand (in another terminal; use a fresh directory for each enrollment):
    $client_command
  Then:  openssl x509 -in '$client_dir/client.pem' -noout -subject
  More tokens:  $scepproxy_bin token issue -c $config --profile demo --device another-device
  Access log:   tail -f $proxy_log

Serving until Ctrl-C.
EOF
    # Returns when either server exits on its own (or on Ctrl-C, through the trap).
    wait -n "${started_pids[@]}" || true
    fail "a server exited unexpectedly; see $proxy_log and $state_dir/scepserver.log"
fi

# --- 6. --check: enroll through the proxy --------------------------------------------
say "enrolling demo-device with scepclient through the proxy"
mkdir -p "$client_dir"
if ! (cd "$client_dir" && timeout 120 scepclient -server-url "$scep_url" -challenge "$challenge" \
        -private-key key.pem -cn demo-device) >"$state_dir/scepclient.log" 2>&1; then
    cat "$state_dir/scepclient.log" >&2
    fail "scepclient could not enroll through the proxy (proxy log: $proxy_log)"
fi
[[ -s "$client_dir/client.pem" ]] || fail "scepclient succeeded but wrote no certificate"
openssl verify -CAfile "$state_dir/depot/ca.pem" "$client_dir/client.pem" >/dev/null \
    || fail "the issued certificate does not verify against the demo CA"
grep -qE 'event=request .*op=PKIOperation .*status=200' "$proxy_log" \
    || fail "the proxy's access log shows no successful PKIOperation"
subject="$(openssl x509 -in "$client_dir/client.pem" -noout -subject)"
say "certificate issued through the proxy: $subject"
say "check passed"
