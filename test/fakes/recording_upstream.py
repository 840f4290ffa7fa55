#!/usr/bin/env python3
# Fake SCEP upstream for integration tests: forwards to a real SCEP server or serves canned answers, records every request, can stall.
"""Usage in a test (in-process, threads):

    upstream = RecordingUpstream(forward_to="127.0.0.1:PORT").start()
    ... point the proxy at upstream.url ...
    assert upstream.request_count() == 0
    upstream.set_stall(True)    # later requests are held open without an answer (504 tests)
    upstream.stop()

Standalone, for poking at the proxy by hand:
    recording_upstream.py --forward 127.0.0.1:8081 [--stall]
prints its URL, then one JSON line per request it receives.
"""

import argparse
import http.client
import http.server
import json
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field

# A stalled request is released after this long at the latest, so a forgotten
# stall never keeps a thread (and the test run) alive for ever.
MAX_STALL_SECONDS = 120


@dataclass
class RecordedRequest:
    method: str
    path: str                 # before '?'
    query: str                # raw, after '?'
    operation: str | None     # the `operation` query parameter, if any
    headers: dict             # lower-cased names; the last value wins
    body_length: int
    body: bytes = field(repr=False)


@dataclass
class CannedAnswer:
    status: int
    content_type: str
    body: bytes


class RecordingUpstream:
    """An HTTP/1.1 server on 127.0.0.1:<kernel-chosen port>.

    forward_to: "host:port" of a real SCEP server; the request's path and query are kept.
    canned: {operation: CannedAnswer}; used for operations listed there (before forwarding).
    """

    def __init__(self, forward_to=None, canned=None, path="/scep"):
        self.forward_to = forward_to
        self.canned = dict(canned or {})
        self.path = path
        self._records = []
        self._lock = threading.Lock()
        self._stalling = False
        self._release_stalled = threading.Event()
        self._server = None
        self._thread = None

    # --- lifecycle -------------------------------------------------------

    def start(self):
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._release_stalled.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}{self.path}"

    # --- what tests use --------------------------------------------------

    def requests(self):
        with self._lock:
            return list(self._records)

    def request_count(self):
        with self._lock:
            return len(self._records)

    def set_stall(self, stalling):
        """While stalling, requests are recorded, then held without any answer."""
        with self._lock:
            self._stalling = stalling
            if stalling:
                self._release_stalled.clear()
            else:
                self._release_stalled.set()

    # --- used by the handler ---------------------------------------------

    def _record(self, request):
        with self._lock:
            self._records.append(request)
            return self._stalling

    def _answer(self, request):
        """Returns (status, content_type, body)."""
        canned = self.canned.get(request.operation)
        if canned is not None:
            return canned.status, canned.content_type, canned.body
        if self.forward_to is None:
            return 404, "text/plain", b"no canned answer for this operation\n"
        return self._forward(request)

    def _forward(self, request):
        host, _, port = self.forward_to.rpartition(":")
        target = request.path + ("?" + request.query if request.query else "")
        headers = {}
        if "content-type" in request.headers:
            headers["Content-Type"] = request.headers["content-type"]
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request(request.method, target,
                               body=request.body if request.method == "POST" else None,
                               headers=headers)
            response = connection.getresponse()
            body = response.read()
            return response.status, response.getheader("Content-Type", ""), body
        except OSError as error:
            return 599, "text/plain", f"recording upstream: forward failed: {error}\n".encode()
        finally:
            connection.close()


def _make_handler(upstream):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive, like NDES/scepserver
        # Head and body are two writes: without this, Nagle + the peer's delayed ACK add ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
            pass

        def do_GET(self):
            self._handle()

        def do_POST(self):
            self._handle()

        def _handle(self):
            headers = {name.lower(): value for name, value in self.headers.items()}
            if "transfer-encoding" in headers:
                # NDES/IIS refuses chunked bodies: record it so tests can see the proxy did it.
                self._record(headers, b"")
                self._send(411, "text/plain", b"chunked request bodies are not accepted\n")
                self.close_connection = True
                return
            body = self.rfile.read(int(headers.get("content-length", "0") or "0"))
            request, stalling = self._record(headers, body)
            if stalling:
                upstream._release_stalled.wait(MAX_STALL_SECONDS)
                self.close_connection = True   # never answer a stalled request
                return
            status, content_type, payload = upstream._answer(request)
            self._send(status, content_type, payload)

        def _record(self, headers, body):
            path, _, query = self.path.partition("?")
            operation = urllib.parse.parse_qs(query).get("operation", [None])[0]
            request = RecordedRequest(self.command, path, query, operation, headers, len(body), body)
            return request, upstream._record(request)

        def _send(self, status, content_type, payload):
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forward", help="host:port of the real SCEP server")
    parser.add_argument("--stall", action="store_true", help="record requests, never answer")
    args = parser.parse_args()

    class PrintingUpstream(RecordingUpstream):
        def _record(self, request):
            print(json.dumps({"method": request.method, "path": request.path, "query": request.query,
                              "operation": request.operation, "body_length": request.body_length}),
                  flush=True)
            return super()._record(request)

    upstream = PrintingUpstream(forward_to=args.forward).start()
    upstream.set_stall(args.stall)
    print(f"listening url={upstream.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
