# Shared harness for the integration tests: temp dirs, real SCEP peers (scepserver, scepclient), the proxy, HTTP helpers.
"""Every test module ends with `harness.main()`, which takes the tool paths from the
command line (ctest passes them) and runs unittest:

    test_x.py --scepproxy PATH [--scepserver PATH] [--scepclient PATH] [--openssl PATH] [unittest args]

Rules kept here so each test doesn't have to: every wait is bounded; every child
process is killed when the test process ends (atexit, SIGTERM, and PR_SET_PDEATHSIG
if the runner itself is killed); everything lives in a per-class temp dir, removed
at the end unless SCEPPROXY_KEEP_TMP=1; servers listen on kernel-chosen ports.
"""

import argparse
import atexit
import base64
import dataclasses
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

FAKES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes")
sys.path.insert(0, os.path.abspath(FAKES_DIR))
from recording_upstream import CannedAnswer, RecordingUpstream  # noqa: E402,F401  (re-exported)


class Tools:
    """Paths of the programs under test, filled in by main()."""
    scepproxy = None
    scepserver = "scepserver"
    scepclient = "scepclient"
    openssl = "openssl"


# Bounds for every wait in the suite. Generous: the machines are small and shared.
START_TIMEOUT = 20.0      # a server prints its listening line / accepts connections
STOP_TIMEOUT = 10.0       # SIGTERM -> exit (the contract says "a few seconds")
CLI_TIMEOUT = 30.0
ENROLL_TIMEOUT = 90.0     # scepclient: key generation + three round trips
HTTP_TIMEOUT = 20.0


# --- child processes ----------------------------------------------------------

_children = []


def _kill_children():
    for child in _children:
        if child.poll() is None:
            child.kill()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_children)
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def spawn(args, cwd, log_prefix):
    """Starts a child with stdout/stderr in files LOG_PREFIX.stdout / .stderr."""
    stdout = open(log_prefix + ".stdout", "wb")
    stderr = open(log_prefix + ".stderr", "wb")
    try:
        # setpriv (util-linux, always on Debian) sets PR_SET_PDEATHSIG then execs: if the test
        # runner is killed (ctest timeout), the kernel kills the child too. A preexec_fn
        # would do the same but isn't safe once the fake upstream's threads run.
        child = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", *args], cwd=cwd,
                                 stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    finally:
        stdout.close()
        stderr.close()
    _children.append(child)
    return child


def wait_until(predicate, timeout, what, interval=0.02):
    """Polls predicate() until it returns something truthy; raises TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def tail(path, lines=60):
    return "\n".join(read_text(path).splitlines()[-lines:])


def stop_child(child, timeout=STOP_TIMEOUT):
    """SIGTERM, then SIGKILL after timeout. Returns (exit code, exited within timeout)."""
    if child.poll() is not None:
        return child.returncode, True
    child.send_signal(signal.SIGTERM)
    try:
        return child.wait(timeout), True
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait(5), False


def tcp_port_accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def unused_tcp_port():
    """A port nobody listens on right now (for peers that can't be told to use port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


# --- logfmt -------------------------------------------------------------------

_LOGFMT_PAIR = re.compile(r'([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    """'2026-..Z info event=request status=403 reason="a b"' -> {'event': 'request', ...}."""
    fields = {}
    for key, value in _LOGFMT_PAIR.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        fields[key] = value
    return fields


def token_id(guid):
    """The 8-hex token id the proxy logs: SHA-256 of the token's 16 bytes, first 8 hex digits."""
    return hashlib.sha256(uuid.UUID(guid).bytes).hexdigest()[:8]


# --- scepserver ---------------------------------------------------------------

class ScepServer:
    """micromdm scepserver with a fresh CA depot, on a free port (all interfaces: it can't bind loopback only).
    name: its directory under workdir (several servers in one class need their own). depot: serve this
    CA depot instead (one made by another ScepServer: two servers of one CA). ca_options: more flags of
    `scepserver ca -init` when this server makes its depot, e.g. ["-organization", "ca-2"] (every
    depot made with the defaults has the same issuer name and serial: to a SCEP client's envelope,
    which names its recipient by issuer and serial, they'd be one CA)."""

    def __init__(self, workdir, challenge, name="scepserver", depot=None, ca_options=()):
        self.workdir = os.path.join(workdir, name)
        self.challenge = challenge
        self.depot = depot or os.path.join(self.workdir, "depot")
        self.ca_options = tuple(ca_options)
        self.process = None
        self.port = None
        self._starts = 0

    @property
    def ca_pem(self):
        return os.path.join(self.depot, "ca.pem")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/scep"

    @property
    def address(self):
        return ("127.0.0.1", self.port)

    def start(self, port=None):
        """port: listen on this one (e.g. the port of an earlier run) instead of a free one."""
        os.makedirs(self.workdir, exist_ok=True)
        if not os.path.exists(self.ca_pem):
            # 2048-bit CA key: the default 4096 costs seconds per test class for no benefit here.
            subprocess.run([Tools.scepserver, "ca", "-init", "-depot", self.depot, "-keySize", "2048",
                            *self.ca_options],
                           cwd=self.workdir, check=True, capture_output=True, timeout=CLI_TIMEOUT)
        # The free port can be taken between our probe and scepserver's bind: retry a few times.
        for attempt in range(3):
            self.port = port or unused_tcp_port()
            log_prefix = os.path.join(self.workdir, "scepserver." + (f"{attempt}" if self._starts == 0
                                                                     else f"{self._starts}.{attempt}"))
            self.log_prefix = log_prefix
            self.process = spawn([Tools.scepserver, "-depot", self.depot, "-port", str(self.port),
                                  "-challenge", self.challenge], self.workdir, log_prefix)
            try:
                wait_until(lambda: self.process.poll() is not None or tcp_port_accepts("127.0.0.1", self.port),
                           START_TIMEOUT, "scepserver to accept connections")
            except TimeoutError:
                self.stop()
                raise
            if self.process.poll() is None:
                self._starts += 1
                return self
        raise RuntimeError("scepserver did not start:\n" + tail(self.log_prefix + ".stderr"))

    def restart_on_new_depot(self, depot, ca_options=()):
        """Stops, then serves a fresh CA made in DEPOT (a new directory) on the same port: a CA
        whose certificate was renewed or replaced."""
        self.stop()
        self.depot = depot
        self.ca_options = tuple(ca_options)
        return self.start(port=self.port)

    def stop(self):
        if self.process is not None:
            stop_child(self.process)
            self.process = None


# --- a recording upstream in its own process -------------------------------------

class UpstreamProcess:
    """test/fakes/recording_upstream.py as a child process, so that a test can SIGKILL it (the
    kernel closes its sockets, as when a CA's host dies) and start it again on the same port.
    requests() reads the JSON line it prints per request."""

    SCRIPT = os.path.join(FAKES_DIR, "recording_upstream.py")

    def __init__(self, workdir, name, forward_to, stall_operation=None, record_bodies=False):
        self.workdir = workdir
        self.name = name
        self.forward_to = forward_to
        self.stall_operation = stall_operation
        self.record_bodies = record_bodies
        self.port = None
        self.process = None
        self._starts = 0
        self._earlier = []   # requests seen by earlier runs

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/scep"

    @property
    def log_prefix(self):
        return os.path.join(self.workdir, f"upstream-{self.name}.{self._starts}")

    def start(self):
        args = [sys.executable, self.SCRIPT, "--forward", self.forward_to, "--port", str(self.port or 0)]
        if self.stall_operation:
            args += ["--stall-operation", self.stall_operation]
        if self.record_bodies:
            args.append("--record-bodies")
        self._starts += 1
        self.process = spawn(args, self.workdir, self.log_prefix)

        def listening():
            for line in read_text(self.log_prefix + ".stdout").splitlines():
                if line.startswith("listening url="):
                    return int(line.rpartition(":")[2].partition("/")[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"recording upstream exited:\n{tail(self.log_prefix + '.stderr')}")
            return None
        self.port = wait_until(listening, START_TIMEOUT, f"upstream {self.name} to listen")
        return self

    def kill(self):
        """SIGKILL: no goodbye, its connections are closed by the kernel."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        if self.process is not None:
            self._earlier += self._read_requests()
        self.process = None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def _read_requests(self):
        # Only whole lines: the upstream may be writing the last one right now.
        lines = read_text(self.log_prefix + ".stdout").split("\n")[:-1]
        return [json.loads(line) for line in lines if line.startswith("{")]

    def requests(self):
        """Every request received by this upstream, over all its runs: dicts with method, path, query,
        operation, body_length (and body_base64 with record_bodies)."""
        return self._earlier + (self._read_requests() if self.process is not None else [])

    def operations(self):
        return [r["operation"] for r in self.requests()]

    def bodies(self, operation="PKIOperation"):
        """The messages of the requests for OPERATION, in order (needs record_bodies): a POST's
        body, or a GET's decoded `message=`."""
        assert self.record_bodies, "started without record_bodies"
        messages = []
        for request in self.requests():
            if request["operation"] != operation:
                continue
            if request["method"] == "GET":
                message = urllib.parse.parse_qs(request["query"]).get("message", [""])[0]
                messages.append(base64.b64decode(message + "=" * (-len(message) % 4)))
            else:
                messages.append(base64.b64decode(request["body_base64"]))
        return messages


# --- PostgreSQL -----------------------------------------------------------------

class PostgresServer:
    """A throw-away PostgreSQL server (test/postgres_server.sh): unix socket only, trust auth,
    data under /tmp. down()/up() stop and restart it with its data; freeze()/thaw() stop its
    processes (SIGSTOP) so that it accepts connections but never answers."""

    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "postgres_server.sh")

    def __init__(self, workdir):
        self.state_dir = os.path.join(workdir, "postgres")
        self.conninfo = None
        self._frozen = []

    def _run(self, command):
        result = subprocess.run([self.SCRIPT, command, self.state_dir], capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"postgres_server.sh {command} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def start(self):
        self.conninfo = self._run("start").strip().splitlines()[-1]
        return self

    def stop(self):
        self.thaw()
        self._run("stop")

    def down(self):
        self._run("down")

    def up(self):
        self._run("up")

    def write_conninfo(self, path):
        with open(path, "w") as f:
            f.write(self.conninfo + "\n")
        return path

    def _processes(self):
        """The postmaster and its children (the server's backends and helpers)."""
        postmaster = int(self._run("pid").strip())
        pids = [postmaster]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(entry))
        return pids

    def freeze(self):
        self._frozen = self._processes()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        for pid in self._frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self._frozen = []

    def psql(self, sql):
        """Runs SQL with psql on the server; its rows as psql -At prints them ('|' between columns)."""
        return run_psql(self.conninfo, sql)

    def restart(self):
        """Stopped (pg_ctl stop -m fast: every connection is closed by the server) and started again."""
        self.down()
        self.up()


def postgres_bin_dir():
    """The PostgreSQL server's bin directory, found as test/postgres_server.sh finds it."""
    try:
        bin_dir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                 timeout=CLI_TIMEOUT).stdout.strip()
        if os.access(os.path.join(bin_dir, "pg_ctl"), os.X_OK):
            return bin_dir
    except OSError:
        pass
    versions = sorted((d for d in os.listdir("/usr/lib/postgresql") if d.isdigit()), key=int) \
        if os.path.isdir("/usr/lib/postgresql") else []
    if not versions:
        raise RuntimeError("no PostgreSQL server found (install the postgresql package: packaging/install_deps.sh)")
    return f"/usr/lib/postgresql/{versions[-1]}/bin"


def run_psql(conninfo, sql, timeout=CLI_TIMEOUT):
    """psql -At on CONNINFO (-X: no ~/.psqlrc); raises on any error."""
    result = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


class PostgresPair:
    """Two throw-away PostgreSQL clusters on loopback TCP, as a failover setup has them: a primary
    (initdb) and a streaming standby made from it with `pg_basebackup -R` (hot standby, physical
    replication slot). conninfo: a libpq multi-host string naming both, primary first, with
    target_session_attrs=read-write. kill_primary() is `pg_ctl stop -m immediate` (no goodbye to
    the clients), promote() is `pg_ctl promote`. As root the servers run as the `postgres` user
    (PostgreSQL refuses root), like test/postgres_server.sh; data under /tmp."""

    def __init__(self, workdir, connect_timeout=2):
        self.workdir = workdir
        self.connect_timeout = connect_timeout
        self.bin_dir = postgres_bin_dir()
        self.root = None
        self.ports = {}
        self.running = set()

    def _as_server_user(self, args, timeout=120):
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--"] + args
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result.stdout

    def _data(self, name):
        return os.path.join(self.root, name)

    def _pg_ctl(self, name, *args):
        return self._as_server_user([os.path.join(self.bin_dir, "pg_ctl"), "-D", self._data(name), *args])

    def _start(self, name):
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.ports[name]} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c synchronous_commit=off -c max_connections=100 -c hot_standby=on")
        self._pg_ctl(name, "-l", os.path.join(self.root, f"{name}.log"), "-w", "-t", "60", "-o", options, "start")
        self.running.add(name)

    def start(self):
        self.root = tempfile.mkdtemp(prefix="scepproxy-pgpair.", dir="/tmp")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.ports = {"primary": unused_tcp_port(), "standby": unused_tcp_port()}
        while self.ports["standby"] == self.ports["primary"]:
            self.ports["standby"] = unused_tcp_port()
        self._as_server_user([os.path.join(self.bin_dir, "initdb"), "-D", self._data("primary"), "--auth=trust",
                              "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync"])
        self._start("primary")
        self._as_server_user([os.path.join(self.bin_dir, "pg_basebackup"), "-h", "127.0.0.1",
                              "-p", str(self.ports["primary"]), "-U", "postgres", "-D", self._data("standby"),
                              "-R", "-X", "stream", "--create-slot", "--slot=standby", "--no-sync"])
        self._start("standby")
        wait_until(lambda: self.psql("primary", "SELECT count(*) FROM pg_stat_replication "
                                                "WHERE state = 'streaming'") == "1",
                   START_TIMEOUT, "the standby to stream from the primary", interval=0.1)
        return self

    def conninfo(self, **extra):
        """The multi-host connection string (primary, then standby); extra: more key=value pairs."""
        pairs = {"host": "127.0.0.1,127.0.0.1", "port": f"{self.ports['primary']},{self.ports['standby']}",
                 "dbname": "postgres", "user": "postgres", "target_session_attrs": "read-write",
                 "connect_timeout": str(self.connect_timeout)}
        pairs.update({key: str(value) for key, value in extra.items()})
        return " ".join(f"{key}={value}" for key, value in pairs.items())

    def write_conninfo(self, path, **extra):
        with open(path, "w") as f:
            f.write(self.conninfo(**extra) + "\n")
        return path

    def psql(self, name, sql):
        """SQL on one server ("primary" or "standby") by its unix socket."""
        return run_psql(f"host={self.root} port={self.ports[name]} dbname=postgres user=postgres", sql)

    def wait_for_standby_to_catch_up(self, timeout=START_TIMEOUT):
        """Until the standby has replayed everything the primary has written so far (replication is
        asynchronous: a commit the standby hasn't got is lost in a failover)."""
        lsn = self.psql("primary", "SELECT pg_current_wal_lsn()")
        wait_until(lambda: self.psql("standby", f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") == "t",
                   timeout, "the standby to replay the primary's WAL", interval=0.05)

    def kill_primary(self):
        """pg_ctl stop -m immediate: the server's processes quit at once, no shutdown checkpoint."""
        self._pg_ctl("primary", "-m", "immediate", "-w", "-t", "60", "stop")
        self.running.discard("primary")

    def promote(self):
        """pg_ctl promote; returns when the standby accepts writes."""
        self._pg_ctl("standby", "-w", "-t", "60", "promote")
        wait_until(lambda: self.psql("standby", "SELECT pg_is_in_recovery()") == "f", START_TIMEOUT,
                   "the promoted standby to leave recovery", interval=0.05)

    def stop(self):
        for name in list(self.running):
            try:
                self._pg_ctl(name, "-m", "immediate", "-w", "-t", "60", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            self.running.discard(name)
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


class SilentListener:
    """A TCP listener on 127.0.0.1:PORT that completes handshakes (the kernel does) but never
    accepts, reads or answers: a server whose host hangs. The port must be free (SO_REUSEADDR)."""

    def __init__(self, port):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        self.socket.listen(128)

    def close(self):
        self.socket.close()


# --- the proxy ----------------------------------------------------------------

@dataclasses.dataclass
class Profile:
    """One `profiles:` entry of a generated config. upstream_url: one URL, or a list of them.
    lines: more keys of the profile as written, e.g. ["ca_cache_ttl: 0s"]."""
    name: str
    upstream_url: str | list
    connect_timeout: str = "2s"
    timeout: str = "10s"
    challenge_file: str | None = None
    challenge: str | None = None   # a YAML flow mapping, e.g. '{ type: dynamic, url: "...", ... }'
    token_ttl: str | None = None
    lines: tuple = ()


def proxy_config(workdir, profiles, limits=None, public_url="http://127.0.0.1:8080", admin_token_file=None,
                 metrics=False, store_cache_ttl=None, store=None, scep_listen="127.0.0.1:0"):
    """The YAML text of a test config: port-0 SCEP listener (scep_listen, e.g. "[::1]:0"), sqlite store in workdir.
    admin_token_file / metrics: also an admin API / metrics listener on a port-0 loopback address.
    store_cache_ttl: e.g. "0s" so that CLI changes (device set, revoke) apply at once.
    store: lines of the `store:` section (without it and its indentation) instead of the
    sqlite ones, e.g. ["backend: postgres", "postgres: { conninfo_file: /x }"]."""
    if store is None:
        store = ["backend: sqlite", f"sqlite: {{ path: {os.path.join(workdir, 'enrollments.db')} }}"]
    lines = [
        "# generated by test/integration/harness.py",
        "workers: 2",
        "scep:",
        f'  listen: "{scep_listen}"',
        f'  public_url: "{public_url}"',
        "store:",
    ] + [f"  {line}" for line in store]
    if store_cache_ttl is not None:
        lines.append(f"  cache_ttl: {store_cache_ttl}")
    if admin_token_file:
        lines += ["admin:", '  listen: "127.0.0.1:0"', f"  bearer_token_file: {admin_token_file}"]
    if metrics:
        lines += ["metrics:", '  listen: "127.0.0.1:0"']
    if limits:
        lines.append("limits:")
        lines += [f"  {key}: {value}" for key, value in limits.items()]
    lines.append("profiles:")
    for profile in profiles:
        urls = [profile.upstream_url] if isinstance(profile.upstream_url, str) else profile.upstream_url
        lines += [f"  {profile.name}:", "    upstreams:"]
        lines += [f'      - url: "{url}"' for url in urls]
        lines += [
            f"    connect_timeout: {profile.connect_timeout}",
            f"    timeout: {profile.timeout}",
        ]
        lines += [f"    {line}" for line in profile.lines]
        if profile.token_ttl:
            lines.append(f"    token_ttl: {profile.token_ttl}")
        if profile.challenge_file:
            lines.append(f"    challenge: {{ type: static, password_file: {profile.challenge_file} }}")
        if profile.challenge:
            lines.append(f"    challenge: {profile.challenge}")
    return "\n".join(lines) + "\n"


class Proxy:
    """`scepproxy serve` on a generated config; knows its real address from the listening log line."""

    def __init__(self, workdir, config_text, name="proxy"):
        self.workdir = workdir
        self.config_path = os.path.join(workdir, f"{name}.yaml")
        self.log_prefix = os.path.join(workdir, name)
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.process = None
        self.address = None

    @property
    def stdout_path(self):
        return self.log_prefix + ".stdout"

    @property
    def stderr_path(self):
        return self.log_prefix + ".stderr"

    def start(self):
        self.process = spawn([Tools.scepproxy, "serve", "-c", self.config_path], self.workdir, self.log_prefix)
        self.address = wait_until(self._listening_address, START_TIMEOUT, "the proxy's listening line")
        if self.address == "exited":
            raise RuntimeError(f"scepproxy exited with {self.process.returncode} before listening:\n"
                               + tail(self.stdout_path) + "\n" + tail(self.stderr_path))
        return self

    def _listening_address(self):
        for line in read_text(self.stdout_path).splitlines():
            fields = parse_logfmt(line)
            if fields.get("event") == "listening" and fields.get("listener") == "scep":
                host, _, port = fields.get("address", "").rpartition(":")
                return (host.strip("[]"), int(port))
        if self.process.poll() is not None:
            return "exited"
        return None

    def listener_address(self, name):
        """(host, port) of the `admin` or `metrics` listener, from its listening line (logged before scep's)."""
        for line in read_text(self.stdout_path).splitlines():
            fields = parse_logfmt(line)
            if fields.get("event") == "listening" and fields.get("listener") == name:
                host, _, port = fields.get("address", "").rpartition(":")
                return (host.strip("[]"), int(port))
        raise AssertionError(f"the proxy logged no listening line for the {name} listener")

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def sanitized(self):
        """True when the running daemon is the ASan+UBSan build (the sanitize.integration run)."""
        with open(f"/proc/{self.pid()}/maps") as f:
            return "libasan" in f.read() or "ASAN_OPTIONS" in os.environ

    def metric(self, name, **labels):
        """One sample of the proxy's /metrics (needs proxy_config(metrics=True)) with exactly these
        labels, 0 when absent; e.g. metric("scepproxy_connections", listener="scep")."""
        text = http_get(self.listener_address("metrics"), "/metrics").body.decode()
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        for line in text.splitlines():
            match = re.match(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", line)
            if match and match.group(1) == name and ",".join(sorted((match.group(2) or "").split(","))) == wanted:
                return float(match.group(3))
        return 0.0

    def stop(self):
        """SIGTERM; returns (exit code, exited within STOP_TIMEOUT)."""
        if self.process is None:
            return None, True
        result = stop_child(self.process)
        return result

    def dump_logs(self, stream=sys.stderr):
        print(f"--- {self.stdout_path} (tail) ---\n{tail(self.stdout_path)}\n"
              f"--- {self.stderr_path} (tail) ---\n{tail(self.stderr_path)}", file=stream)

    # What the daemon wrote.

    def output(self):
        return read_text(self.stdout_path) + read_text(self.stderr_path)

    def request_log(self, event="request"):
        """Access log entries (event=request, or event=connection_closed), parsed, in order."""
        entries = []
        for line in read_text(self.stdout_path).splitlines():
            fields = parse_logfmt(line)
            if fields.get("event") == event:
                entries.append(fields)
        return entries

    def pid(self):
        return self.process.pid

    def metric_value(self, name, **labels):
        """One sample of /metrics (the metrics listener must be on): the first line of `name`
        whose labels include these; None when there is none."""
        text = http_get(self.listener_address("metrics"), "/metrics").body.decode()
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None

    def log_events(self, event):
        """The daemon's log lines with event=EVENT (not access log lines), parsed, in order."""
        return [fields for fields in map(parse_logfmt, read_text(self.stdout_path).splitlines())
                if fields.get("event") == event]

    def wait_for_request_log(self, timeout=5.0, **fields):
        """Waits for the first access log entry whose fields have these values, e.g.
        wait_for_request_log(token="1a2b3c4d", op="GetCACaps"). The line is written after the
        response, so a test that has its answer may still have to wait a moment for the line."""
        wanted = {key: str(value) for key, value in fields.items()}

        def matching_entry():
            for entry in self.request_log():
                if all(entry.get(key) == value for key, value in wanted.items()):
                    return entry
            return None
        return wait_until(matching_entry, timeout, f"an access log line with {wanted}")

    # The CLI, on the same config and store.

    def cli(self, *words, args=()):
        """scepproxy WORDS... -c CONFIG ARGS... e.g. cli("token", "issue", args=["--profile", "p"])."""
        return subprocess.run([Tools.scepproxy, *words, "-c", self.config_path, *args],
                              capture_output=True, text=True, timeout=CLI_TIMEOUT)

    def issue_token(self, profile, device, ttl=None):
        args = ["--profile", profile, "--device", device] + (["--ttl", ttl] if ttl else [])
        result = self.cli("token", "issue", args=args)
        if result.returncode != 0:
            raise AssertionError(f"token issue failed ({result.returncode}): {result.stderr}")
        return json.loads(result.stdout)

    def revoke_token(self, token):
        result = self.cli("token", "revoke", args=[token])
        if result.returncode != 0:
            raise AssertionError(f"token revoke failed ({result.returncode}): {result.stderr}")

    def set_device(self, device, enrolled=None, compliant=None):
        args = ["--device", device]
        if enrolled is not None:
            args += ["--enrolled", "true" if enrolled else "false"]
        if compliant is not None:
            args += ["--compliant", "true" if compliant else "false"]
        result = self.cli("device", "set", args=args)
        if result.returncode != 0:
            raise AssertionError(f"device set failed ({result.returncode}): {result.stderr}")

    def scep_url(self, token, suffix=""):
        """The token's SCEP URL on the proxy's real address (scep_url uses public_url)."""
        host, port = self.address
        return f"http://{host}:{port}/scep/{token}{suffix}"


# --- scepclient and certificates ----------------------------------------------

@dataclasses.dataclass
class Enrollment:
    returncode: int
    output: str
    directory: str

    @property
    def certificate(self):
        path = os.path.join(self.directory, "client.pem")
        return path if os.path.exists(path) else None


def enroll(workdir, scep_url, challenge, common_name):
    """Runs scepclient in a fresh directory (it reuses key/CSR files it finds in its cwd)."""
    directory = tempfile.mkdtemp(prefix=f"scepclient-{common_name}-", dir=workdir)
    args = [Tools.scepclient, "-server-url", scep_url, "-private-key", "key.pem",
            "-cn", common_name, "-keySize", "2048", "-debug"]
    if challenge is not None:
        args += ["-challenge", challenge]
    result = subprocess.run(args, cwd=directory, capture_output=True, text=True, timeout=ENROLL_TIMEOUT)
    return Enrollment(result.returncode, result.stdout + result.stderr, directory)


def certificate_subject(path):
    """{'CN': ..., 'O': ...} of a PEM certificate, read by openssl."""
    result = subprocess.run([Tools.openssl, "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253"],
                            capture_output=True, text=True, timeout=CLI_TIMEOUT, check=True)
    subject = result.stdout.strip().removeprefix("subject=")
    return dict(part.split("=", 1) for part in subject.split(","))


def certificate_verifies(ca_pem, path):
    result = subprocess.run([Tools.openssl, "verify", "-CAfile", ca_pem, path],
                            capture_output=True, text=True, timeout=CLI_TIMEOUT)
    return result.returncode == 0


# --- HTTP -----------------------------------------------------------------------

@dataclasses.dataclass
class Response:
    status: int
    headers: dict     # lower-cased names
    body: bytes
    elapsed: float    # seconds, request sent to response read

    @property
    def content_type(self):
        return self.headers.get("content-type")


def http_request(address, method, target, body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request on a new connection (http.client), e.g. ("GET", "/scep/T?operation=GetCACaps")."""
    connection = http.client.HTTPConnection(address[0], address[1], timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, payload,
                        time.monotonic() - started)
    finally:
        connection.close()


def http_get(address, target, **kwargs):
    return http_request(address, "GET", target, **kwargs)


def json_request(address, method, target, body=None, token=None, headers=None, **kwargs):
    """An admin API call: `body` (a dict, or bytes as they are) sent as JSON, `token` as a bearer
    token. Returns (Response, the parsed JSON answer or None when it isn't JSON)."""
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    response = http_request(address, method, target, body=body, headers=headers, **kwargs)
    try:
        return response, json.loads(response.body)
    except ValueError:
        return response, None


def stored_token_count(workdir, device_id):
    """Tokens the sqlite store of proxy_config(workdir, ...) holds for `device_id` (read-only)."""
    uri = "file:" + os.path.join(workdir, "enrollments.db") + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM tokens WHERE device_id = ?", (device_id,)).fetchone()[0]
    finally:
        db.close()


def http_post_pki(address, target, body, **kwargs):
    return http_request(address, "POST", target, body=body,
                        headers={"Content-Type": "application/x-pki-message"}, **kwargs)


@dataclasses.dataclass
class RawResponse:
    status: int | None    # None: the connection closed (or timed out) without a status line
    head: bytes
    body: bytes


def raw_exchange(address, data, timeout=10.0, pieces=1, half_close=False):
    """Sends bytes as they are and reads one HTTP response (headers + Content-Length body) or EOF.
    pieces > 1: the bytes go out in that many separate TCP segments, 20 ms apart. half_close: then
    shuts down the sending side (FIN) and still reads the answer."""
    with socket.create_connection(address, timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        size = -(-len(data) // pieces)   # ceiling division
        try:
            for start in range(0, len(data), size):
                if start:
                    time.sleep(0.02)
                s.sendall(data[start:start + size])
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything: read what it said
        deadline = time.monotonic() + timeout
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = _recv_until(s, deadline)
            if not chunk:
                return _raw_response(received, b"")
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
        wanted = int(match.group(1)) if match else 0
        while len(body) < wanted:
            chunk = _recv_until(s, deadline)
            if not chunk:
                break
            body += chunk
        return _raw_response(head, body)


def _recv_until(s, deadline):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return b""
    s.settimeout(remaining)
    try:
        return s.recv(65536)
    except (socket.timeout, ConnectionResetError):
        return b""


def _raw_response(head, body):
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return RawResponse(int(match.group(1)) if match else None, head, body)


# --- test base class --------------------------------------------------------------

class IntegrationTestCase(unittest.TestCase):
    """A temp dir per test class (cls.workdir) and class-level cleanup of what the class starts."""

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix=f"scepproxy-{cls.__name__}-")
        if os.environ.get("SCEPPROXY_KEEP_TMP") != "1":
            cls.addClassCleanup(shutil.rmtree, cls.workdir, ignore_errors=True)
        else:
            print(f"keeping {cls.workdir}", file=sys.stderr)

    @classmethod
    def start_scepserver(cls, challenge, **kwargs):
        """kwargs: ScepServer's name, depot, ca_options."""
        server = ScepServer(cls.workdir, challenge, **kwargs)
        cls.addClassCleanup(server.stop)
        return server.start()

    @classmethod
    def start_postgres(cls):
        server = PostgresServer(cls.workdir)
        cls.addClassCleanup(server.stop)
        return server.start()

    @classmethod
    def start_postgres_pair(cls, **kwargs):
        """A primary and its streaming standby (PostgresPair); kwargs: its connect_timeout."""
        pair = PostgresPair(cls.workdir, **kwargs)
        cls.addClassCleanup(pair.stop)
        return pair.start()

    @classmethod
    def start_upstream(cls, **kwargs):
        upstream = RecordingUpstream(**kwargs)
        cls.addClassCleanup(upstream.stop)
        return upstream.start()

    @classmethod
    def start_upstream_process(cls, name, forward_to, stall_operation=None, record_bodies=False):
        upstream = UpstreamProcess(cls.workdir, name, forward_to, stall_operation, record_bodies)
        cls.addClassCleanup(upstream.kill)
        return upstream.start()

    @classmethod
    def start_proxy(cls, config_text, name="proxy"):
        proxy = Proxy(cls.workdir, config_text, name)
        # Cleanups run last-in first-out: logs are printed (shown by ctest on failure) after the stop.
        cls.addClassCleanup(proxy.dump_logs)
        cls.addClassCleanup(proxy.stop)
        return proxy.start()

    @classmethod
    def write_file(cls, name, text):
        path = os.path.join(cls.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assertProxyServes(self, proxy, token):
        """The proxy is alive and still answers GetCACaps for a valid token."""
        self.assertTrue(proxy.alive(), "the proxy process died")
        response = http_get(proxy.address, f"/scep/{token}?operation=GetCACaps")
        self.assertEqual(response.status, 200, response.body)


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--scepproxy", required=True)
    parser.add_argument("--scepserver", default=Tools.scepserver)
    parser.add_argument("--scepclient", default=Tools.scepclient)
    parser.add_argument("--openssl", default=Tools.openssl)
    args, rest = parser.parse_known_args()
    Tools.scepproxy = args.scepproxy
    Tools.scepserver = args.scepserver
    Tools.scepclient = args.scepclient
    Tools.openssl = args.openssl
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)
