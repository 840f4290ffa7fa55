#!/usr/bin/env python3
# Integration: limits.max_buffered_bytes bounds the request bytes all connections buffer; slow senders past it wait, then complete.
"""SENDERS clients each POST a BODY-byte PKIOperation slowly: most of the body (HELD_PART) in
pieces, then a pause, then the rest. Unbounded, the proxy would hold every sender's partial body
at once (SENDERS x ~1 MB); with max_buffered_bytes = BOUND only a few bodies are let in and the
other connections stop reading until those are answered: their bytes wait in the kernel.

Measured during the pause, when nothing moves (the senders the proxy reads from are paused, the
others blocked in send()): what the proxy has taken from the kernel, i.e. what the clients sent
minus what is still queued in the kernel on either side (each client socket's unsent bytes,
each proxy-side socket's Recv-Q from `ss`). Its request buffers hold at least that. Also the
proxy's resident memory, loosely: each worker's malloc arena keeps its own high-water mark, so
it may grow by up to workers x BOUND plus some slack. Then every request is answered, none 408."""

import fcntl
import socket
import struct
import subprocess
import termios
import threading
import time

import harness
from harness import CannedAnswer, Profile, proxy_config

SENDERS = 64
BODY = 1_000_000            # fits a 1 MiB input buffer with the head
BOUND = 8 << 20             # max_buffered_bytes: about seven such bodies
WORKERS = 2                 # proxy_config's
RSS_SLACK = 16 << 20        # what else the resident memory may grow by (allocator, threads)
PIECE = 64 << 10
HELD_PART = BODY * 9 // 10  # sent before the pause
HOLD = 2.0                  # seconds of pause, at least
RUN_TIMEOUT = 90.0

CANNED = {"GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\nAES\n")}


def resident_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/pid/status")


def queued_at_proxy(port):
    """Bytes in the Recv-Q of the proxy's side of every connection to its port (not yet read by it)."""
    listing = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    return sum(int(line.split()[0]) for line in listing.splitlines() if line.strip())


class SlowSender(threading.Thread):
    """One POST: head, HELD_PART of the body in pieces, a wait for `release`, the rest; then its answer."""

    def __init__(self, address, target, release):
        super().__init__(daemon=True)
        self.address, self.target, self.release = address, target, release
        self.sent = 0          # bytes handed to the kernel
        self.socket = None
        self.status = None
        self.error = None

    def unsent(self):
        """Bytes still in this client's send queue (not yet in the proxy's receive queue)."""
        return struct.unpack("i", fcntl.ioctl(self.socket.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]

    def send(self, data):
        view = memoryview(data)
        while view:
            n = self.socket.send(view)  # blocks while the proxy doesn't read
            self.sent += n
            view = view[n:]

    def run(self):
        try:
            self.socket = socket.create_connection(self.address, timeout=RUN_TIMEOUT)
            with self.socket as s:
                self.send(f"POST {self.target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-pki-message\r\n"
                          f"Content-Length: {BODY}\r\nConnection: close\r\n\r\n".encode())
                body = b"\x30" * BODY
                for start in range(0, HELD_PART, PIECE):
                    self.send(body[start:min(start + PIECE, HELD_PART)])
                    time.sleep(0.02)
                self.release.wait(RUN_TIMEOUT)
                self.send(body[HELD_PART:])
                answer = b""
                while b"\r\n" not in answer:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                if answer.startswith(b"HTTP/1.1 "):
                    self.status = int(answer[9:12])
        except OSError as e:
            self.error = repr(e)


class BufferedBytesBound(harness.IntegrationTestCase):
    LIMITS = {"max_body_bytes": 1 << 20, "max_buffered_bytes": BOUND, "header_timeout": "60s",
              "body_timeout": "60s", "per_client": "{ max_connections: 0 }"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upstream = cls.start_upstream(canned=CANNED)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [Profile("demo", cls.upstream.url)], limits=cls.LIMITS))
        cls.token = cls.proxy.issue_token("demo", "device-buffered")["token"]

    def test_slow_senders_stay_within_the_bound_and_all_complete(self):
        pid = self.proxy.pid()
        target = f"/scep/{self.token}?operation=PKIOperation"
        # Warm up: one request of the same kind, so that what it allocates once isn't counted.
        warm = SlowSender(self.proxy.address, target, threading.Event())
        warm.release.set()
        warm.start()
        warm.join(RUN_TIMEOUT)
        self.assertIsNotNone(warm.status, warm.error)
        baseline = resident_bytes(pid)

        release = threading.Event()
        senders = [SlowSender(self.proxy.address, target, release) for _ in range(SENDERS)]
        for sender in senders:
            sender.start()
        peak = baseline
        # Until nothing moves any more: every sender paused or blocked (bounded in time).
        pause_deadline = time.monotonic() + RUN_TIMEOUT / 2
        last_total, still_since = -1, time.monotonic()
        while time.monotonic() < pause_deadline:
            peak = max(peak, resident_bytes(pid))
            total = sum(sender.sent for sender in senders)
            if total != last_total:
                last_total, still_since = total, time.monotonic()
            elif time.monotonic() - still_since >= HOLD:
                break
            time.sleep(0.05)
        taken = sum(s.sent - s.unsent() for s in senders if s.socket) - queued_at_proxy(self.proxy.address[1])
        paused = sum(1 for s in senders if s.sent >= HELD_PART)
        release.set()
        deadline = time.monotonic() + RUN_TIMEOUT
        while any(sender.is_alive() for sender in senders) and time.monotonic() < deadline:
            peak = max(peak, resident_bytes(pid))
            time.sleep(0.02)
        for sender in senders:
            sender.join(max(0.0, deadline - time.monotonic()))

        grown = peak - baseline
        print(f"\n{SENDERS} senders of {BODY} bytes, bound {BOUND >> 20} MiB: during the pause the proxy had taken "
              f"{taken / (1 << 20):.1f} MiB from the kernel ({paused} senders past {HELD_PART} bytes); resident "
              f"memory baseline {baseline / (1 << 20):.1f} MiB, peak +{grown / (1 << 20):.1f} MiB")
        self.assertLessEqual(taken, BOUND)
        # Under ASan (sanitize.integration) resident memory says nothing: its quarantine keeps freed
        # blocks on purpose. What the proxy took from the kernel is the bound's measure either way.
        if not self.proxy.sanitized():
            self.assertLess(grown, WORKERS * BOUND + RSS_SLACK)
        self.assertFalse([s for s in senders if s.is_alive()], "senders still running")
        self.assertEqual([s.error for s in senders if s.error], [])
        statuses = [s.status for s in senders]
        self.assertNotIn(None, statuses)
        self.assertNotIn(408, statuses)  # waited for room, not timed out
        self.assertEqual(statuses, [warm.status] * SENDERS)
        self.assertIn("buffered_bytes_limit_reached", self.proxy.output())
        bodies = [e for e in self.proxy.request_log() if e.get("bytes_in") == str(BODY)]
        self.assertEqual(len(bodies), SENDERS + 1)  # every body arrived whole (and the warm-up's)


if __name__ == "__main__":
    harness.main()
