#!/usr/bin/env python3
# Fake MDM compliance webhook for tests: answers {"allow","reason"} per device, records every request, can stall or misbehave.
"""In-process (threads), as the integration tests use it:

    mdm = FakeMdmWebhook(bearer_token="secret").start()
    ... point store.webhook.url at mdm.url ...
    mdm.configure(devices={"dev-1": {"allow": False, "reason": "wiped"}}, delay=3.0)
    mdm.requests()   # [{"headers": {...}, "body": {...}}, ...]
    mdm.stop()

As a shared background server (the C++ unit tests: ctest starts one for all of them):

    fake_mdm_webhook.py start STATE_DIR   # serves in the background; writes STATE_DIR/url, STATE_DIR/pid
    fake_mdm_webhook.py stop STATE_DIR

Tests sharing it keep apart by tenant: checks POSTed to /t/TENANT/... belong to TENANT
(anything else to "default"), and each tenant has its own configuration and records:
    POST   /_control/config?tenant=T    {"devices": {ID: {"allow": bool, "reason": str}},
                                         "default": {...}, "delay": seconds, "status": int,
                                         "raw_body": str, "drop": bool, "bearer_token": str}
                                        (replaces the tenant's configuration)
    GET    /_control/requests?tenant=T  the tenant's recorded checks, oldest first
A check is recorded, then answered: wrong or missing bearer token (the tenant's, else the
server's) -> 401; `drop` -> the connection is closed without an answer; `status` -> that
status; `raw_body` -> those bytes as the body; else the device's entry, or `default`
(allow). `delay` holds the answer back that many seconds.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import http.server
import urllib.parse

# A forgotten delay never keeps a thread (and the test run) alive for ever.
MAX_DELAY_SECONDS = 60
MAX_BODY_BYTES = 1 << 20
DEFAULT_ANSWER = {"allow": True, "reason": "compliant"}
DEFAULT_TENANT = "default"


class FakeMdmWebhook:
    def __init__(self, bearer_token=None, host="127.0.0.1"):
        self.bearer_token = bearer_token
        self.host = host
        self._lock = threading.Lock()
        self._requests = {}   # tenant -> [record]
        self._configs = {}    # tenant -> normalised config
        self._server = None
        self._thread = None

    # --- lifecycle -------------------------------------------------------

    def start(self):
        self._server = http.server.ThreadingHTTPServer((self.host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def url(self):
        """The check URL of the default tenant."""
        return f"{self.base_url}/scep/check"

    # --- control ---------------------------------------------------------

    @staticmethod
    def _normalised(config):
        return {
            "devices": dict(config.get("devices") or {}),
            "default": dict(config.get("default") or DEFAULT_ANSWER),
            "delay": min(float(config.get("delay") or 0), MAX_DELAY_SECONDS),
            "status": config.get("status"),
            "raw_body": config.get("raw_body"),
            "drop": bool(config.get("drop")),
            "bearer_token": config.get("bearer_token"),
        }

    def configure(self, tenant=DEFAULT_TENANT, **config):
        """Replaces a tenant's configuration: devices=, default=, delay=, status=, raw_body=, drop=, bearer_token=."""
        with self._lock:
            self._configs[tenant] = self._normalised(config)

    def requests(self, tenant=DEFAULT_TENANT):
        with self._lock:
            return list(self._requests.get(tenant, []))

    # --- answering -------------------------------------------------------

    def _answer(self, tenant, headers, raw):
        """(status or None to drop the connection, body bytes, delay) for one check; records it first."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._requests.setdefault(tenant, []).append({"headers": headers, "body": body})
            config = self._configs.get(tenant) or self._normalised({})
        if config["drop"]:
            return None, b"", config["delay"]
        expected = config["bearer_token"] or self.bearer_token
        if expected is not None and headers.get("authorization") != f"Bearer {expected}":
            return 401, b'{"error":"unauthorized"}', 0
        device = body.get("device_id") if isinstance(body, dict) else None
        answer = config["devices"].get(device, config["default"])
        payload = config["raw_body"].encode() if config["raw_body"] is not None else json.dumps(answer).encode()
        return config["status"] or 200, payload, config["delay"]


def _make_handler(mdm):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(min(length, MAX_BODY_BYTES))

        def _send(self, status, body, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self):
            path, _, query = self.path.partition("?")
            tenant = urllib.parse.parse_qs(query).get("tenant", [DEFAULT_TENANT])[0]
            return path, tenant

        def do_GET(self):
            path, tenant = self._route()
            if path == "/_control/requests":
                self._send(200, json.dumps(mdm.requests(tenant)).encode())
            else:
                self._send(404, b"{}")

        def do_POST(self):
            raw = self._read_body()
            path, tenant = self._route()
            if path == "/_control/config":
                mdm.configure(tenant, **json.loads(raw or b"{}"))
                self._send(204, b"")
                return
            parts = path.split("/")
            if len(parts) > 3 and parts[1] == "t":
                tenant = parts[2]
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body, delay = mdm._answer(tenant, headers, raw)
            if delay:
                time.sleep(delay)
            try:
                if status is None:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._send(status, body)
            except OSError:
                pass   # the client gave up (timeout tests)

    return Handler


# --- the shared background server ------------------------------------------------

def _running(pid):
    """True while the process exists and is not a zombie waiting for whoever reaps orphans."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _stop_background(state_dir):
    pid_file = os.path.join(state_dir, "pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    try:
        # Only ever our own server: a stale pid file may name some other process by now.
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            ours = b"fake_mdm_webhook" in f.read()
    except OSError:
        ours = False
    try:
        if ours:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        ours = False
    deadline = time.monotonic() + 10
    while ours and _running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    for name in ("pid", "url"):
        try:
            os.remove(os.path.join(state_dir, name))
        except FileNotFoundError:
            pass


def _start_background(state_dir, bearer_token):
    os.makedirs(state_dir, exist_ok=True)
    _stop_background(state_dir)   # one left by an interrupted run
    ready_read, ready_write = os.pipe()
    if os.fork() == 0:
        # The server: its own session, no stdio shared with whoever started it (ctest waits
        # for those to close).
        os.setsid()
        os.close(ready_read)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        mdm = FakeMdmWebhook(bearer_token=bearer_token).start()
        with open(os.path.join(state_dir, "url"), "w") as f:
            f.write(mdm.base_url + "\n")
        with open(os.path.join(state_dir, "pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        os.write(ready_write, b"ok")
        os.close(ready_write)
        signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
        threading.Event().wait()
        os._exit(0)
    os.close(ready_write)
    ready = os.read(ready_read, 2)
    if ready != b"ok":
        print("fake_mdm_webhook.py: the background server did not start", file=sys.stderr)
        return 1
    with open(os.path.join(state_dir, "url")) as f:
        print(f"listening {f.read().strip()}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["start", "stop"],
                        help="start/stop a background server (default: serve in the foreground)")
    parser.add_argument("state_dir", nargs="?")
    parser.add_argument("--bearer-token")
    args = parser.parse_args()
    if args.command == "start":
        return _start_background(args.state_dir, args.bearer_token)
    if args.command == "stop":
        _stop_background(args.state_dir)
        return 0
    mdm = FakeMdmWebhook(bearer_token=args.bearer_token).start()
    print(f"listening {mdm.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    mdm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
