#!/usr/bin/env python3
# Fake SCEP upstream for integration tests: forwards to a real SCEP server or serves canned answers, records every request, can stall or misbehave.
"""Usage in a test (in-process, threads):

    upstream = RecordingUpstream(forward_to="127.0.0.1:PORT").start()
    ... point the proxy at upstream.url ...
    assert upstream.request_count() == 0
    upstream.set_stall(True)    # later requests are held open without an answer (504 tests)
    upstream.set_fault("reset") # later requests get one of FAULTS instead of an answer
    upstream.set_hold(True)     # later requests wait; set_hold(False) answers them (a slow upstream)
    upstream.stop()

Standalone (a process a test can SIGKILL and restart on the same port), or by hand:
    recording_upstream.py --forward 127.0.0.1:8081 [--port P] [--stall] [--stall-operation OP] [--record-bodies]
prints its URL, then one JSON line per request it receives (with --record-bodies, its body too, as body_base64).
"""

import argparse
import base64
import http.client
import http.server
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

# A stalled request is released after this long at the latest, so a forgotten
# stall never keeps a thread (and the test run) alive for ever.
MAX_STALL_SECONDS = 120

# What set_fault() can make the upstream do instead of answering:
#   reset      the head and half the body, then a TCP reset (SO_LINGER 0)
#   reset_before_answer  a TCP reset without a byte of answer
#   garbage    bytes that are no HTTP response, then close
#   oversized  a 200 announcing (and sending up to) OVERSIZED_BODY_BYTES
#   close      close without a byte
FAULTS = ("reset", "reset_before_answer", "garbage", "oversized", "close")
OVERSIZED_BODY_BYTES = 8 << 20


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
    delay: float = 0.0   # seconds to wait before answering (a slow CA), at most MAX_STALL_SECONDS


class RecordingUpstream:
    """An HTTP/1.1 server on 127.0.0.1:<kernel-chosen port>.

    forward_to: "host:port" of a real SCEP server; the request's path and query are kept.
    canned: {operation: CannedAnswer}; used for operations listed there (before forwarding).
    """

    def __init__(self, forward_to=None, canned=None, path="/scep", port=0, stall_operation=None):
        self.forward_to = forward_to
        self.canned = dict(canned or {})
        self.path = path
        self._port = port
        self._stall_operation = stall_operation   # stall only this operation (None: as set_stall says)
        self._records = []
        self._lock = threading.Lock()
        self._stalling = False
        self._fault = None
        self._release_stalled = threading.Event()
        self._holding = False
        self._release_held = threading.Event()
        self._held_now = 0
        self._server = None
        self._thread = None

    # --- lifecycle -------------------------------------------------------

    def start(self):
        self._server = _Server(("127.0.0.1", self._port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._release_stalled.set()
        self._release_held.set()
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

    def set_fault(self, fault):
        """One of FAULTS for every later request (recorded first), or None to answer again."""
        assert fault is None or fault in FAULTS, fault
        with self._lock:
            self._fault = fault

    def set_hold(self, holding):
        """While holding, requests are recorded, then wait; set_hold(False) answers them all."""
        with self._lock:
            self._holding = holding
            if holding:
                self._release_held.clear()
            else:
                self._release_held.set()

    def held_count(self):
        """Requests waiting right now because of set_hold."""
        with self._lock:
            return self._held_now

    def _wait_if_held(self):
        with self._lock:
            if not self._holding:
                return
            self._held_now += 1
        self._release_held.wait(MAX_STALL_SECONDS)
        with self._lock:
            self._held_now -= 1

    # --- used by the handler ---------------------------------------------

    def _record(self, request):
        """Records the request; returns (stall it?, fault or None)."""
        with self._lock:
            self._records.append(request)
            stall = self._stalling or (self._stall_operation is not None and request.operation == self._stall_operation)
            return stall, self._fault

    def _answer(self, request):
        """Returns (status, content_type, body)."""
        canned = self.canned.get(request.operation)
        if canned is not None:
            if canned.delay:
                time.sleep(min(canned.delay, MAX_STALL_SECONDS))
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


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128   # the default 5 drops SYNs when tests send many requests at once


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
            request, (stalling, fault) = self._record(headers, body)
            if stalling:
                upstream._release_stalled.wait(MAX_STALL_SECONDS)
                self.close_connection = True   # never answer a stalled request
                return
            if fault is not None:
                self.close_connection = True
                self._misbehave(fault)
                return
            upstream._wait_if_held()
            status, content_type, payload = upstream._answer(request)
            self._send(status, content_type, payload)

        def _misbehave(self, fault):
            try:
                if fault == "reset":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-x509-ca-cert\r\n"
                                     b"Content-Length: 4096\r\n\r\n" + b"\x30" * 2048)
                    self.wfile.flush()
                    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif fault == "reset_before_answer":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif fault == "garbage":
                    self.wfile.write(b"\x00\xffSSH-2.0-not-http\r\n\r\n" + bytes(range(256)))
                elif fault == "oversized":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-x509-ca-cert\r\n"
                                     b"Content-Length: " + str(OVERSIZED_BODY_BYTES).encode() + b"\r\n\r\n")
                    chunk = b"\x30" * 65536
                    for _ in range(OVERSIZED_BODY_BYTES // len(chunk)):   # until the proxy hangs up
                        self.wfile.write(chunk)
                self.wfile.flush()
            except OSError:
                pass  # the proxy hung up: that's what it should do

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
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: the kernel picks)")
    parser.add_argument("--stall", action="store_true", help="record requests, never answer")
    parser.add_argument("--stall-operation", help="record requests for this operation, never answer them")
    parser.add_argument("--record-bodies", action="store_true", help="print each request's body (base64) too")
    args = parser.parse_args()

    print_lock = threading.Lock()

    class PrintingUpstream(RecordingUpstream):
        def _record(self, request):
            record = {"method": request.method, "path": request.path, "query": request.query,
                      "operation": request.operation, "body_length": request.body_length}
            if args.record_bodies:
                record["body_base64"] = base64.b64encode(request.body).decode()
            line = json.dumps(record)
            # One write per line under a lock: print() writes the text and the newline separately, so
            # two handler threads could interleave them into one unreadable line.
            with print_lock:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            return super()._record(request)

    upstream = PrintingUpstream(forward_to=args.forward, port=args.port, stall_operation=args.stall_operation).start()
    # Only to start stalling: set_stall(False) releases every stalled request at once, so
    # --stall-operation requests would be closed unanswered right away instead of held.
    if args.stall:
        upstream.set_stall(True)
    print(f"listening url={upstream.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
