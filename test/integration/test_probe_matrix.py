#!/usr/bin/env python3
# Integration: the framing/smuggling probe matrix — each ambiguous request gets its 400/501/505 and a closed connection, the upstream sees no byte, and headers sent upstream are rebuilt.
"""Every case goes through the real proxy to a recording upstream behind a byte-recording
relay, so "the upstream received nothing" means not one byte, not just no parsed request.

Each case is sent with a valid PKIOperation pipelined right after it (what a smuggler would
hide): the proxy must answer the case once, close, and never act on the rest. A valid request
on a new connection then still works. The case table (PROBE_CASES) is also the source of the
HTTP request fuzz seeds: test/fuzz/make_seeds.py writes one seed per case.
"""

import dataclasses
import os
import re
import socket
import threading
import time
import unittest
import uuid

import harness
from harness import CannedAnswer, Profile, proxy_config

PKCS7_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "pkcs7", "data")
CLOSE_TIMEOUT = 5.0   # the proxy shuts its side right after a rejection; this only bounds a hang
CAPS = b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n"


# --- the requests ---------------------------------------------------------------

@dataclasses.dataclass
class Probe:
    """What a case is built from: the target of a valid PKIOperation and its DER body."""
    target: str
    body: bytes
    host: str = "proxy.test"

    def head(self, headers, method="POST", target=None, version="HTTP/1.1", host=True):
        """A request head: request line, Host (unless host=False), Content-Type, then `headers` (raw bytes)."""
        line = f"{method} {target if target is not None else self.target} {version}\r\n".encode()
        host_line = f"Host: {self.host}\r\n".encode() if host else b""
        return line + host_line + b"Content-Type: application/x-pki-message\r\n" + headers + b"\r\n"

    def cl(self, extra=b""):
        return b"Content-Length: %d\r\n" % len(self.body) + extra

    def post(self, headers=None, **head_args):
        """The body framed by Content-Length (unless `headers` frames it otherwise)."""
        return self.head(self.cl() if headers is None else headers, **head_args) + self.body

    def chunked_body(self, size_line=None):
        """The body as two chunks; size_line replaces the first chunk's size line (without CRLF)."""
        half = len(self.body) // 2
        first, second = self.body[:half], self.body[half:]
        size = size_line if size_line is not None else b"%x" % len(first)
        return size + b"\r\n" + first + b"\r\n" + b"%x\r\n" % len(second) + second + b"\r\n0\r\n\r\n"

    def valid(self):
        return self.post()


@dataclasses.dataclass
class ProbeCase:
    name: str
    build: object   # Probe -> bytes
    status: int
    reason: str


def _cases():
    te = b"Transfer-Encoding: chunked\r\n"
    cases = [
        # Content-Length and Transfer-Encoding together (RFC 9112 §6.3: reject, never pick one).
        ("cl_and_te", lambda p: p.head(p.cl(te)) + p.chunked_body(), 400, "te_and_cl"),
        ("te_and_cl", lambda p: p.head(te + p.cl()) + p.chunked_body(), 400, "te_and_cl"),
        ("smuggle_cl_te", lambda p: p.head(b"Content-Length: 6\r\n" + te) + b"0\r\n\r\nG", 400, "te_and_cl"),
        ("smuggle_te_cl", lambda p: p.head(b"Content-Length: 4\r\n" + te)
         + b"5c\r\nGPOST / HTTP/1.1\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n", 400, "te_and_cl"),
        # TE.TE: a second, obfuscated Transfer-Encoding that one side might ignore.
        ("smuggle_te_te_space_before_colon", lambda p: p.head(p.cl(te + b"Transfer-Encoding : chunked\r\n"))
         + p.chunked_body(), 400, "space_before_colon"),
        ("smuggle_te_te_xchunked", lambda p: p.head(te + b"Transfer-Encoding: xchunked\r\n") + p.chunked_body(),
         400, "duplicate_transfer_encoding"),
        ("smuggle_te_tab_and_cl", lambda p: p.head(p.cl(b"Transfer-Encoding:\tchunked\r\n")) + p.chunked_body(),
         400, "te_and_cl"),
        ("smuggle_te_leading_space_and_cl", lambda p: p.head(p.cl(b" Transfer-Encoding: chunked\r\n"))
         + p.chunked_body(), 400, "obs_fold"),
        ("smuggle_te_xchunked_and_cl", lambda p: p.head(p.cl(b"Transfer-Encoding: xchunked\r\n")) + p.body,
         400, "te_and_cl"),
        ("smuggle_te_lf_before_colon", lambda p: p.head(p.cl(b"Transfer-Encoding\n: chunked\r\n")) + p.body,
         400, "bare_lf"),
        # Content-Length values.
        ("cl_duplicate_differing", lambda p: p.head(p.cl(b"Content-Length: %d\r\n" % (len(p.body) + 1))) + p.body,
         400, "duplicate_content_length"),
        ("cl_duplicate_identical", lambda p: p.head(p.cl(p.cl())) + p.body, 400, "duplicate_content_length"),
        ("cl_list", lambda p: p.head(b"Content-Length: %d, %d\r\n" % (len(p.body), len(p.body))) + p.body,
         400, "duplicate_content_length"),
        ("cl_non_digit", lambda p: p.head(b"Content-Length: abc\r\n") + p.body, 400, "bad_content_length"),
        ("cl_empty", lambda p: p.head(b"Content-Length: \r\n") + p.body, 400, "bad_content_length"),
        ("cl_plus_sign", lambda p: p.head(b"Content-Length: +%d\r\n" % len(p.body)) + p.body, 400, "bad_content_length"),
        ("cl_minus_sign", lambda p: p.head(b"Content-Length: -1\r\n") + p.body, 400, "bad_content_length"),
        ("cl_hex", lambda p: p.head(b"Content-Length: 0x%x\r\n" % len(p.body)) + p.body, 400, "bad_content_length"),
        ("cl_digits_with_space", lambda p: p.head(b"Content-Length: 1 0\r\n") + p.body, 400, "bad_content_length"),
        ("cl_overflow_2_64", lambda p: p.head(b"Content-Length: 18446744073709551616\r\n") + p.body,
         400, "bad_content_length"),
        ("cl_overflow_long", lambda p: p.head(b"Content-Length: " + b"9" * 40 + b"\r\n") + p.body,
         400, "bad_content_length"),
        ("cl_max_uint64_over_limit", lambda p: p.head(b"Content-Length: 18446744073709551615\r\n") + p.body,
         413, "body_too_large"),
        # Chunk sizes.
        ("chunk_size_non_hex", lambda p: p.head(te) + p.chunked_body(b"zz"), 400, "bad_chunk_size"),
        ("chunk_size_0x", lambda p: p.head(te) + p.chunked_body(b"0x%x" % (len(p.body) // 2)), 400, "bad_chunk_size"),
        ("chunk_size_negative", lambda p: p.head(te) + p.chunked_body(b"-1"), 400, "bad_chunk_size"),
        ("chunk_size_leading_space", lambda p: p.head(te) + p.chunked_body(b" %x" % (len(p.body) // 2)),
         400, "bad_chunk_size"),
        ("chunk_size_trailing_junk", lambda p: p.head(te) + p.chunked_body(b"%xjunk" % (len(p.body) // 2)),
         400, "bad_chunk_size"),
        ("chunk_size_space_junk", lambda p: p.head(te) + p.chunked_body(b"%x junk" % (len(p.body) // 2)),
         400, "bad_chunk_size"),
        ("chunk_size_17_digits", lambda p: p.head(te) + p.chunked_body(b"0" * 16 + b"1"), 400, "bad_chunk_size"),
        ("chunk_size_empty", lambda p: p.head(te) + p.chunked_body(b""), 400, "bad_chunk_size"),
        ("chunk_data_without_crlf", lambda p: p.head(te) + b"%x\r\n" % len(p.body) + p.body + b"XX0\r\n\r\n",
         400, "missing_chunk_crlf"),
        # Field syntax.
        ("obs_fold", lambda p: p.post(p.cl(b"X-Probe: a\r\n folded\r\n")), 400, "obs_fold"),
        ("obs_fold_tab", lambda p: p.post(p.cl(b"X-Probe: a\r\n\tfolded\r\n")), 400, "obs_fold"),
        ("stray_cr_in_header", lambda p: p.post(p.cl(b"X-Probe: a\rb\r\n")), 400, "bare_cr"),
        ("stray_cr_in_request_line", lambda p: p.post(target=p.target + "\r"), 400, "bare_cr"),
        ("bare_lf_after_header", lambda p: p.post(p.cl(b"X-Probe: a\n")), 400, "bare_lf"),
        ("nul_in_request_line", lambda p: p.post(target=p.target + "\0"), 400, "nul_byte"),
        ("nul_in_header_value", lambda p: p.post(p.cl(b"X-Probe: a\0b\r\n")), 400, "nul_byte"),
        ("nul_in_header_name", lambda p: p.post(p.cl(b"X-Pr\0be: a\r\n")), 400, "nul_byte"),
        ("space_before_colon", lambda p: p.post(b"Content-Length : %d\r\n" % len(p.body)), 400, "space_before_colon"),
        ("tab_before_colon", lambda p: p.post(b"Content-Length\t: %d\r\n" % len(p.body)), 400, "space_before_colon"),
        ("header_without_colon", lambda p: p.post(p.cl(b"X-Probe\r\n")), 400, "missing_colon"),
        ("space_in_header_name", lambda p: p.post(p.cl(b"X Probe: a\r\n")), 400, "bad_header_name"),
        # Host.
        ("http11_without_host", lambda p: p.post(host=False), 400, "missing_host"),
        ("duplicate_host", lambda p: p.post(p.cl(b"Host: other.test\r\n")), 400, "duplicate_host"),
        ("host_with_path", lambda p: p.post(host=False, headers=b"Host: a.test/b\r\n" + p.cl()), 400, "bad_host"),
        # Transfer codings other than exactly "chunked": 501.
        ("te_gzip", lambda p: p.head(b"Transfer-Encoding: gzip\r\n") + p.body, 501, "unsupported_transfer_coding"),
        ("te_chunked_gzip", lambda p: p.head(b"Transfer-Encoding: chunked, gzip\r\n") + p.chunked_body(),
         501, "unsupported_transfer_coding"),
        ("te_gzip_chunked", lambda p: p.head(b"Transfer-Encoding: gzip, chunked\r\n") + p.chunked_body(),
         501, "unsupported_transfer_coding"),
        ("te_identity", lambda p: p.head(b"Transfer-Encoding: identity\r\n") + p.body, 501,
         "unsupported_transfer_coding"),
        ("te_xchunked", lambda p: p.head(b"Transfer-Encoding: xchunked\r\n") + p.chunked_body(),
         501, "unsupported_transfer_coding"),
        ("te_chunked_twice_in_list", lambda p: p.head(b"Transfer-Encoding: chunked, chunked\r\n") + p.chunked_body(),
         501, "unsupported_transfer_coding"),
        ("te_in_http10", lambda p: p.head(te, version="HTTP/1.0") + p.chunked_body(), 400, "te_in_http_1_0"),
        # Request targets and versions.
        ("absolute_form", lambda p: p.post(target="http://proxy.test" + p.target), 400, "bad_request_target"),
        ("asterisk_form", lambda p: p.post(method="OPTIONS", target="*"), 400, "bad_request_target"),
        ("authority_form", lambda p: p.post(method="CONNECT", target="upstream.test:443"), 400, "bad_request_target"),
        ("fragment_in_target", lambda p: p.post(target=p.target + "#frag"), 400, "bad_request_target"),
        ("http_1_2", lambda p: p.post(version="HTTP/1.2"), 505, "unsupported_version"),
        ("http_2_0", lambda p: p.post(version="HTTP/2.0"), 505, "unsupported_version"),
        ("http2_preface", lambda p: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "unsupported_version"),
        ("version_lowercase", lambda p: p.post(version="http/1.1"), 400, "bad_request_line"),
        ("version_two_digit_minor", lambda p: p.post(version="HTTP/1.10"), 400, "bad_request_line"),
        ("two_spaces_after_method", lambda p: p.post(method="POST ", target=p.target), 400, "bad_request_line"),
    ]
    return [ProbeCase(*case) for case in cases]


PROBE_CASES = _cases()

# Headers a client might use to spoof its origin or smuggle hop-by-hop semantics; none may
# reach the upstream (each value carries a marker the upstream's bytes are searched for).
SPOOF_HEADERS = [
    "Connection: keep-alive, X-Secret",
    "X-Secret: {m}",
    "Keep-Alive: timeout=99, {m}",
    "X-Forwarded-For: 203.0.113.9, {m}",
    "X-Forwarded-Host: {m}.example",
    "X-Forwarded-Proto: {m}",
    "X-Forwarded-Port: 1{m}",
    "X-Real-IP: {m}",
    "Forwarded: for={m};proto=https",
    "Via: 1.1 {m}",
    "Proxy-Authorization: Basic {m}",
    "Authorization: Bearer {m}",
    "Cookie: session={m}",
    "Upgrade: {m}",
    "TE: trailers, {m}",
    "Trailer: {m}",
    "User-Agent: {m}",
    "Accept: {m}/x",
    "X-Original-URL: /{m}",
    "X-HTTP-Method-Override: {m}",
]


# --- the upstream side: a relay that records every byte ---------------------------

class RecordingRelay:
    """TCP relay on 127.0.0.1:<kernel port> in front of an upstream; keeps every byte sent to it."""

    def __init__(self, target):
        self.target = target
        self._lock = threading.Lock()
        self._streams = []    # bytearray per accepted connection, proxy -> upstream
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._stopping = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def port(self):
        return self._listener.getsockname()[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/scep"

    def stop(self):
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)   # wakes the accept() in the other thread
        except OSError:
            pass
        self._listener.close()

    def byte_count(self):
        with self._lock:
            return sum(len(stream) for stream in self._streams)

    def streams(self):
        with self._lock:
            return [bytes(stream) for stream in self._streams]

    def _accept_loop(self):
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            stream = bytearray()
            with self._lock:
                self._streams.append(stream)
            try:
                upstream = socket.create_connection(self.target, timeout=harness.HTTP_TIMEOUT)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream, stream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, source, sink, record):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if record is not None:
                    with self._lock:   # recorded before it is passed on: seen before any answer exists
                        record.extend(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # Either direction ending ends the relayed connection (the other pump then fails and exits).
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def split_requests(stream):
    """Requests (head bytes, body bytes) in one relay stream; the proxy frames with Content-Length only."""
    requests = []
    while stream:
        head, sep, rest = stream.partition(b"\r\n\r\n")
        if not sep:
            requests.append((stream, b""))
            break
        match = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
        length = int(match.group(1)) if match else 0
        requests.append((head, rest[:length]))
        stream = rest[length:]
    return requests


# --- an upstream that answers with chosen raw bytes ---------------------------------

@dataclasses.dataclass
class UpstreamConnectionLog:
    requests: list = dataclasses.field(default_factory=list)   # request lines, in order
    scripted: dict = dataclasses.field(default_factory=dict)   # script id -> index in `requests` it answered
    closed: threading.Event = dataclasses.field(default_factory=threading.Event)   # EOF from the proxy


class ScriptedUpstream:
    """HTTP/1.1 upstream on 127.0.0.1:<kernel port>: answers GetCACaps properly (keep-alive) and
    the next other request with the raw bytes given to script(); logs every connection."""

    def __init__(self, caps):
        self._caps = caps
        self._lock = threading.Lock()
        self._script = None        # (id, raw answer, close after sending it)
        self._next_id = 0
        self.connections = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/scep"

    def stop(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()

    def script(self, raw, close_after=False):
        """The answer to the next non-GetCACaps request; returns its id for scripted_connection()."""
        with self._lock:
            self._next_id += 1
            self._script = (self._next_id, raw, close_after)
            return self._next_id

    def scripted_connection(self, script_id):
        """(connection log, index of the request answered) for a script id, or (None, None)."""
        with self._lock:
            for connection in self.connections:
                if script_id in connection.scripted:
                    return connection, connection.scripted[script_id]
        return None, None

    def _accept_loop(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            log = UpstreamConnectionLog()
            with self._lock:
                self.connections.append(log)
            threading.Thread(target=self._serve, args=(client, log), daemon=True).start()

    def _serve(self, client, log):
        buffered = b""
        with client:
            while True:
                while b"\r\n\r\n" not in buffered:
                    try:
                        data = client.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        log.closed.set()
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                match = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
                length = int(match.group(1)) if match else 0
                while len(buffered) < length:
                    data = client.recv(65536)
                    if not data:
                        log.closed.set()
                        return
                    buffered += data
                buffered = buffered[length:]
                line = head.split(b"\r\n", 1)[0]
                with self._lock:
                    log.requests.append(line)
                    script = None
                    if b"operation=GetCACaps" not in line and self._script is not None:
                        script, self._script = self._script, None
                        log.scripted[script[0]] = len(log.requests) - 1
                if script is None:
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                                   % len(self._caps) + self._caps)
                    continue
                _, raw, close_after = script
                client.sendall(raw)
                if close_after:
                    client.shutdown(socket.SHUT_WR)


# --- the client side ------------------------------------------------------------------

@dataclasses.dataclass
class Exchange:
    status: int | None
    headers: dict      # lower-cased names -> list of values
    body: bytes
    trailing: bytes    # bytes after the first response (a second answer would be here)
    closed: bool       # the proxy closed the connection (within CLOSE_TIMEOUT)


def _parse_first_response(received):
    """(status, headers, body, rest) of the first Content-Length framed response; status None if incomplete."""
    head, sep, rest = received.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    if not sep or not match:
        return None, {}, b"", rest
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower().decode("latin-1"), []).append(value.strip().decode("latin-1"))
    length = int(headers.get("content-length", ["0"])[0])
    if len(rest) < length:
        return None, headers, rest, b""
    return int(match.group(1)), headers, rest[:length], rest[length:]


def exchange(address, data, until_close):
    """Sends `data` on a new connection and reads: until the proxy closes (until_close, bounded by
    CLOSE_TIMEOUT), or until the first response is complete."""
    received = b""
    closed = False
    with socket.create_connection(address, timeout=harness.HTTP_TIMEOUT) as s:
        try:
            s.sendall(data)
        except OSError:
            pass   # the proxy may answer and close before reading everything
        deadline = time.monotonic() + (CLOSE_TIMEOUT if until_close else harness.HTTP_TIMEOUT)
        while until_close or _parse_first_response(received)[0] is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            s.settimeout(remaining)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    status, headers, body, rest = _parse_first_response(received)
    return Exchange(status, headers, body, rest, closed)


# --- the tests ----------------------------------------------------------------------

class ProbeMatrix(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(PKCS7_DATA, "pkcsreq.der"), "rb") as f:
            cls.pki_request = f.read()
        with open(os.path.join(PKCS7_DATA, "certrep-success.der"), "rb") as f:
            cls.cert_rep = f.read()
        cls.upstream = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", CAPS),
            "PKIOperation": CannedAnswer(200, "application/x-pki-message", cls.cert_rep),
        })
        cls.relay = RecordingRelay(("127.0.0.1", cls.upstream.port))
        cls.addClassCleanup(cls.relay.stop)
        cls.scripted = ScriptedUpstream(CAPS)
        cls.addClassCleanup(cls.scripted.stop)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [Profile("probe", cls.relay.url),
                                                               Profile("scripted", cls.scripted.url)]))
        # The cases' token is never used by a valid request, so it is never consumed: a case or
        # follow-up the proxy wrongly accepted would reach the upstream, not stop at a 403.
        cls.probe = cls.fresh_probe()

    @classmethod
    def fresh_probe(cls, host="proxy.test", profile="probe"):
        """A PKIOperation on a new token: a CertRep SUCCESS consumes the token it answers."""
        token = cls.proxy.issue_token(profile, "device-probe")["token"]
        return Probe(f"/scep/{token}/pkiclient.exe?operation=PKIOperation", cls.pki_request, host)

    def assertValidRequestForwarded(self, data, what):
        """`data` on a new connection: answered 200 with the upstream's CertRep; the upstream got
        exactly one PKIOperation whose body is our DER. Returns (head, body) as the upstream saw them."""
        streams_before = self.relay.streams()
        count_before = len(self.pki_operations_upstream())
        answer = exchange(self.proxy.address, data, until_close=False)
        self.assertEqual(answer.status, 200, f"{what}: {answer}")
        self.assertEqual(answer.body, self.cert_rep, what)
        # Each worker asks GetCACaps once before its first PKIOperation: only PKIOperations are counted.
        forwarded = self.pki_operations_upstream()
        self.assertEqual(len(forwarded), count_before + 1, what)
        self.assertEqual((forwarded[-1].method, forwarded[-1].body), ("POST", self.pki_request), what)
        return self.new_upstream_requests(streams_before)[-1]

    def pki_operations_upstream(self):
        return [r for r in self.upstream.requests() if r.operation == "PKIOperation"]

    def new_upstream_requests(self, streams_before):
        """Requests the relay saw after the snapshot `streams_before`."""
        requests = []
        for index, stream in enumerate(self.relay.streams()):
            old = streams_before[index] if index < len(streams_before) else b""
            requests += split_requests(stream[len(old):])
        return requests

    def valid_request_on_new_connection(self, what):
        return self.assertValidRequestForwarded(self.fresh_probe().valid(), what)

    def test_sanity_the_valid_probe_is_forwarded(self):
        head, body = self.valid_request_on_new_connection("valid probe")
        self.assertTrue(head.startswith(b"POST /scep?operation=PKIOperation HTTP/1.1\r\n"), head)
        self.assertEqual(body, self.pki_request)

    def test_every_ambiguous_request_is_rejected_and_nothing_reaches_the_upstream(self):
        # What a smuggler hides behind the case: a complete, valid request.
        follow_up = self.probe.valid()
        for case in PROBE_CASES:
            with self.subTest(case.name):
                bytes_before = self.relay.byte_count()
                count_before = self.upstream.request_count()
                answer = exchange(self.proxy.address, case.build(self.probe) + follow_up, until_close=True)
                self.assertEqual((answer.status, answer.body.rstrip(b"\n")), (case.status, case.reason.encode()),
                                 answer)
                self.assertEqual(answer.headers.get("content-type"), ["text/plain"], answer)
                self.assertEqual(answer.headers.get("connection"), ["close"], answer)
                self.assertTrue(answer.closed, "the proxy kept the connection open after rejecting it")
                self.assertEqual(answer.trailing, b"", "a second answer: the pipelined request was processed")
                self.assertEqual(self.relay.byte_count(), bytes_before, "bytes reached the upstream")
                self.assertEqual(self.upstream.request_count(), count_before, "a request reached the upstream")
                self.valid_request_on_new_connection(f"after {case.name}")
        # Anything sent late (after an answer) would show up here.
        bytes_after = self.relay.byte_count()
        count_after = self.upstream.request_count()
        time.sleep(0.5)
        self.assertEqual((self.relay.byte_count(), self.upstream.request_count()), (bytes_after, count_after),
                         "late upstream traffic")

    def test_headers_sent_upstream_are_rebuilt(self):
        marker = "spoof" + uuid.uuid4().hex
        spoof = "".join(line.format(m=marker) + "\r\n" for line in SPOOF_HEADERS).encode()
        for framing in ("content-length", "chunked"):
            with self.subTest(framing):
                spoof_host = self.fresh_probe(host=f"{marker}.example")
                if framing == "chunked":
                    data = spoof_host.head(b"Transfer-Encoding: chunked\r\n" + spoof) + spoof_host.chunked_body()
                else:
                    data = spoof_host.head(spoof_host.cl(spoof)) + spoof_host.body
                streams_before = self.relay.streams()
                head, body = self.assertValidRequestForwarded(data, framing)
                self.assertEqual(body, self.pki_request)
                everything = b"".join(h + b for h, b in self.new_upstream_requests(streams_before))
                self.assertNotIn(marker.encode(), everything, "a client header value reached the upstream")
                fields = [line.split(b":", 1) for line in head.split(b"\r\n")[1:]]
                names = [name.strip().lower() for name, _ in fields]
                values = {name.strip().lower(): value.strip() for name, value in fields}
                self.assertEqual(names.count(b"host"), 1, head)
                self.assertEqual(values[b"host"], f"127.0.0.1:{self.relay.port}".encode(), head)
                self.assertEqual(names.count(b"content-length"), 1, head)
                self.assertEqual(values[b"content-length"], str(len(self.pki_request)).encode(), head)
                for hop_by_hop in (b"transfer-encoding", b"x-secret", b"keep-alive", b"upgrade", b"te", b"trailer",
                                   b"proxy-authorization"):
                    self.assertNotIn(hop_by_hop, names, head)
                self.assertNotIn(b"x-secret", values.get(b"connection", b"").lower(), head)


    def test_an_upstream_framing_error_closes_that_upstream_connection(self):
        """Ambiguous or broken framing from the upstream: the device gets 502 (or, once the
        answer's head went out, a cut connection), and the upstream connection is closed, never
        given another request."""
        rep = self.cert_rep
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pki-message\r\n"
        chunked = b"%x\r\n" % len(rep) + rep + b"\r\n0\r\n\r\n"
        cut = "cut"   # the device's connection is closed without a complete answer
        cases = [
            # (name, raw answer, close after sending, what the device gets)
            ("cl_and_te", head + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(rep) + chunked,
             False, 502),
            ("duplicate_cl", head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(rep), len(rep) + 1)
             + rep, False, 502),
            ("cl_plus_sign", head + b"Content-Length: +%d\r\n\r\n" % len(rep) + rep, False, 502),
            ("te_gzip", head + b"Transfer-Encoding: gzip\r\n\r\n" + rep, False, 502),
            ("obs_fold", head + b"X-A: a\r\n b\r\nContent-Length: %d\r\n\r\n" % len(rep) + rep, False, 502),
            ("bare_lf", b"HTTP/1.1 200 OK\nContent-Length: %d\n\n" % len(rep) + rep, False, 502),
            ("nul_in_header", head + b"X-A: a\0b\r\nContent-Length: %d\r\n\r\n" % len(rep) + rep, False, 502),
            ("http_2_0", b"HTTP/2.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(rep) + rep, False, 502),
            ("switching_protocols", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", False, 502),
            ("chunk_size_0x", head + b"Transfer-Encoding: chunked\r\n\r\n0x%x\r\n" % len(rep) + rep
             + b"\r\n0\r\n\r\n", False, cut),
            ("bytes_after_the_answer", head + b"Content-Length: %d\r\n\r\n" % len(rep) + rep
             + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False, 200),
        ]
        for name, raw, close_after, expected in cases:
            with self.subTest(name):
                probe = self.fresh_probe(profile="scripted")
                script_id = self.scripted.script(raw, close_after)
                answer = exchange(self.proxy.address, probe.valid(), until_close=expected == cut)
                if expected == cut:
                    self.assertTrue(answer.closed, answer)
                    self.assertTrue(answer.status in (None, 502), answer)   # never a complete 200
                elif expected == 502:
                    self.assertEqual((answer.status, answer.body.rstrip(b"\n")), (502, b"upstream_error"), answer)
                else:
                    self.assertEqual((answer.status, answer.body), (200, rep), answer)
                connection, index = self.scripted.scripted_connection(script_id)
                self.assertIsNotNone(connection, "the request never reached the upstream")
                self.assertTrue(connection.closed.wait(CLOSE_TIMEOUT), "the upstream connection was kept open")
                self.assertEqual(len(connection.requests), index + 1,
                                 f"the connection was reused after a bad answer: {connection.requests}")
                # The next exchange on this profile uses a new connection and works.
                self.scripted.script(head + b"Content-Length: %d\r\n\r\n" % len(rep) + rep)
                answer = exchange(self.proxy.address, self.fresh_probe(profile="scripted").valid(), until_close=False)
                self.assertEqual((answer.status, answer.body), (200, rep), f"after {name}: {answer}")


    def test_an_upstream_closing_mid_answer_is_noticed_at_once(self):
        """The upstream sends part of an answer and closes. The proxy must notice the EOF at
        once (502, or a cut once the head went out), not wait for the profile's timeout, also when
        the EOF arrives together with the last bytes (one edge-triggered event for both)."""
        rep = self.cert_rep
        partial_answers = {
            "body": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(rep) + rep[:100],
            "head": b"HTTP/1.1 200 OK\r\nContent-Len",
        }
        for name, raw in partial_answers.items():
            head_went_out = name == "body"
            for attempt in range(5):   # EOF with the data or in its own segment: timing decides
                with self.subTest(name, attempt=attempt):
                    probe = self.fresh_probe(profile="scripted")
                    self.scripted.script(raw, close_after=True)
                    started = time.monotonic()
                    answer = exchange(self.proxy.address, probe.valid(), until_close=head_went_out)
                    self.assertLess(time.monotonic() - started, CLOSE_TIMEOUT, answer)
                    if head_went_out:
                        # The 200 head was already forwarded: the only honest signal left is the cut.
                        # (an incomplete response: the harness reports no status, only the bytes)
                        self.assertTrue(answer.closed and answer.status is None, answer)
                        self.assertTrue(rep[:100].startswith(answer.body) and len(answer.body) <= 100, answer)
                    else:
                        self.assertEqual((answer.status, answer.body), (502, b"upstream_error\n"), answer)


if __name__ == "__main__":
    harness.main()
