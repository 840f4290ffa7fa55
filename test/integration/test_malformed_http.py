#!/usr/bin/env python3
# Integration: malformed or oversized HTTP on the wire gets the right 4xx, never reaches the upstream, and the proxy keeps serving.
import socket
import time

import harness
from harness import CannedAnswer, Profile, http_get, proxy_config, raw_exchange

LIMITS = {
    "max_request_line_bytes": 2048,
    "max_header_bytes": 4096,
    "max_headers": 32,
    "max_body_bytes": 65536,
    "header_timeout": "1s",
}
HEADER_TIMEOUT = 1.0
SLACK = 1.5


class MalformedHttp(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # No CA needed: the upstream answers the two GET operations from canned bytes.
        cls.upstream = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\nAES\n"),
            "GetCACert": CannedAnswer(200, "application/x-x509-ca-cert", b"\x30\x03\x02\x01\x00"),
        })
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [Profile("demo", cls.upstream.url)], limits=LIMITS))
        cls.token = cls.proxy.issue_token("demo", "device-wire")["token"]

    def valid_target(self, operation="GetCACaps"):
        return f"/scep/{self.token}?operation={operation}"

    def assertAnswered(self, data, status):
        """Sends raw bytes: expects `status`, no upstream request, and a proxy that still serves."""
        seen_before = self.upstream.request_count()
        response = raw_exchange(self.proxy.address, data)
        self.assertEqual(response.status, status, response.head + b"\n\n" + response.body[:200])
        self.assertEqual(self.upstream.request_count(), seen_before, "a malformed request reached the upstream")
        self.assertProxyServes(self.proxy, self.token)

    def test_sanity_a_valid_raw_request_is_answered(self):
        response = raw_exchange(self.proxy.address,
                                f"GET {self.valid_target()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertEqual(response.status, 200, response.head)
        self.assertEqual(response.body, b"POSTPKIOperation\nSHA-256\nAES\n")

    def test_segmentation_does_not_change_the_answer(self):
        # The same bytes in one segment, head and body split, and many small pieces: a parser
        # that keeps views into a buffer it later moves answers differently (or crashes).
        post = (f"POST {self.valid_target('PKIOperation')} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/x-pki-message\r\nContent-Length: 260\r\n\r\n").encode()
        requests = {
            "GET": f"GET {self.valid_target()} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            "POST junk body": post + b"\x30\x82\x01\x00" + b"\x00" * 256,
        }
        for name, data in requests.items():
            answers = {pieces: raw_exchange(self.proxy.address, data, pieces=pieces).status
                       for pieces in (1, 2, 7, 40)}
            with self.subTest(name, answers=answers):
                self.assertEqual(len(set(answers.values())), 1, answers)
                self.assertNotIn(answers[1], (None, 404))
        self.assertProxyServes(self.proxy, self.token)

    def test_bad_request_lines(self):
        target = self.valid_target().encode()
        cases = {
            "garbage": b"GARBAGE\r\n\r\n",
            "method only": b"GET\r\n\r\n",
            "no version": b"GET " + target + b"\r\n\r\n",
            "bad version": b"GET " + target + b" HTTP/1.x\r\nHost: x\r\n\r\n",
            "two spaces": b"GET  " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "binary junk": b"\x00\x01\x02\xff junk\r\n\r\n",
            "tls hello on plain port": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(name):
                self.assertAnswered(data, 400)

    def test_bare_lf_and_bare_cr(self):
        target = self.valid_target().encode()
        cases = {
            "bare LF everywhere": b"GET " + target + b" HTTP/1.1\nHost: x\n\n",
            "bare LF after a header": b"GET " + target + b" HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
            "bare CR in a header": b"GET " + target + b" HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
            "CR junk before the request": b"\r\r\r\rGET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(name):
                self.assertAnswered(data, 400)

    def test_ambiguous_framing(self):
        target = self.valid_target("PKIOperation").encode()
        head = b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-pki-message\r\n"
        cases = {
            "duplicate content-length": head + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "signed content-length": head + b"Content-Length: +5\r\n\r\nhello",
            "hex content-length": head + b"Content-Length: 0x5\r\n\r\nhello",
            "content-length and chunked": head + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "obs-fold": b"GET " + self.valid_target().encode() + b" HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
            "NUL in a header value": b"GET " + self.valid_target().encode() + b" HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
            "space before colon": b"GET " + self.valid_target().encode() + b" HTTP/1.1\r\nHost : x\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(name):
                self.assertAnswered(data, 400)

    def test_oversized_header_gives_431(self):
        big = b"X-Big: " + b"a" * (LIMITS["max_header_bytes"] * 2) + b"\r\n"
        self.assertAnswered(b"GET " + self.valid_target().encode() + b" HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n", 431)

    def test_too_many_headers_gives_431(self):
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(LIMITS["max_headers"] + 10))
        self.assertAnswered(b"GET " + self.valid_target().encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", 431)

    def test_oversized_request_line_gives_414(self):
        target = self.valid_target().encode() + b"&message=" + b"A" * (LIMITS["max_request_line_bytes"] * 2)
        self.assertAnswered(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)

    def test_oversized_body_gives_413_without_reading_it(self):
        # Only the head is sent: the proxy must answer from Content-Length alone.
        head = (f"POST {self.valid_target('PKIOperation')} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/x-pki-message\r\nContent-Length: {LIMITS['max_body_bytes'] * 100}\r\n\r\n")
        self.assertAnswered(head.encode(), 413)

    def test_unknown_or_missing_operation_gives_400(self):
        for target in (f"/scep/{self.token}?operation=GetCRLs", f"/scep/{self.token}?operation=",
                       f"/scep/{self.token}", f"/scep/{self.token}?message=abc",
                       f"/scep/{self.token}?operation=GetCACaps&operation=GetCACert"):
            with self.subTest(target=target):
                self.assertAnswered(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400)

    def test_incomplete_head_gets_408_after_header_timeout(self):
        seen_before = self.upstream.request_count()
        with socket.create_connection(self.proxy.address, timeout=HEADER_TIMEOUT + 5) as s:
            s.sendall(f"GET {self.valid_target()} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
            started = time.monotonic()
            received = b""
            while True:   # bounded by the socket timeout
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    break
                if not chunk:
                    break
                received += chunk
            elapsed = time.monotonic() - started
        self.assertTrue(received.startswith(b"HTTP/1.1 408"), received[:200])
        self.assertGreaterEqual(elapsed, HEADER_TIMEOUT * 0.9)
        self.assertLess(elapsed, HEADER_TIMEOUT + SLACK)
        self.assertEqual(self.upstream.request_count(), seen_before)
        self.assertProxyServes(self.proxy, self.token)

    def test_a_client_that_half_closes_after_its_request_is_answered(self):
        # Some HTTP stacks shut down their sending side once the request is out (FIN): the answer
        # must still come, then the connection closes. Head and FIN together, and apart.
        get = f"GET {self.valid_target()} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        post = (f"POST {self.valid_target('PKIOperation')} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/x-pki-message\r\nContent-Length: 4\r\n\r\n\x30\x02\x05\x00").encode()
        # Exactly one 16 KiB read: the proxy reads on after a full read and meets the FIN before it
        # has looked at the request (as over TLS, where every read goes on until EOF or EAGAIN).
        head = (f"POST {self.valid_target('PKIOperation')} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/x-pki-message\r\nContent-Length: 00000\r\n\r\n")
        body_length = 16384 - len(head)
        one_read = head.replace("00000", f"{body_length:05d}").encode() + b"\x30" + b"\x00" * (body_length - 1)
        self.assertEqual(len(one_read), 16384)
        for name, data, pieces, status in (("GET, one segment", get, 1, 200), ("GET, two segments", get, 2, 200),
                                           ("POST junk, one segment", post, 1, 400),
                                           ("POST of exactly one read", one_read, 1, 400)):
            with self.subTest(name):
                response = raw_exchange(self.proxy.address, data, pieces=pieces, half_close=True, timeout=5)
                self.assertEqual(response.status, status, response.head)
                if status == 200:
                    self.assertEqual(response.body, b"POSTPKIOperation\nSHA-256\nAES\n")

    def test_a_request_cut_short_by_a_half_close_is_dropped_at_once(self):
        # Nothing more can come: no 408 after header_timeout, just the close, and nothing upstream.
        seen_before = self.upstream.request_count()
        started = time.monotonic()
        response = raw_exchange(self.proxy.address, f"GET {self.valid_target()} HTTP/1.1\r\nHost: x".encode(),
                                half_close=True, timeout=HEADER_TIMEOUT + 5)
        elapsed = time.monotonic() - started
        self.assertIsNone(response.status, response.head)
        self.assertLess(elapsed, HEADER_TIMEOUT / 2)
        self.assertEqual(self.upstream.request_count(), seen_before)
        self.assertProxyServes(self.proxy, self.token)

    def test_keeps_serving_many_connections_after_junk(self):
        for i in range(50):
            raw_exchange(self.proxy.address, b"\xff" * (i + 1) + b"\r\n\r\n", timeout=5)
        response = http_get(self.proxy.address, self.valid_target("GetCACert"))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, b"\x30\x03\x02\x01\x00")
        self.assertEqual(response.content_type, "application/x-x509-ca-cert")


if __name__ == "__main__":
    harness.main()
