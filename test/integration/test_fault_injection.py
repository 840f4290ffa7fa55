#!/usr/bin/env python3
# Integration: fault injection — upstream refuses, resets mid-answer, stalls, answers garbage or too much, store down, SQLite disk full: each gives its documented status and reason, leaks no fd and no memory.
"""Every fault runs WARMUP times (pools, caches and the allocator settle), then the daemon's
fd count (/proc/PID/fd) and RSS (/proc/PID/status VmRSS) are taken, then the fault runs
REPEAT more times. Afterwards the fd count must be back to the baseline exactly once the
connections closed, and RSS within RSS_SLACK_KB of it: a leak of one upstream connection
(a 16 KiB read buffer and more) per fault would show as 3 MiB and more over REPEAT runs.

SQLite's disk full: the database lives on a small tmpfs mounted for the test (root in this
container may mount; a tmpfs filled with a filler file fails writes with ENOSPC like a real
full disk, and nothing else on the machine fills up). prlimit --fsize was not chosen because
it kills the daemon with SIGXFSZ; max_page_count because it is per connection, not a fault
the daemon sees from outside.

Under ASan (the sanitize.integration run) RSS is not bounded: its quarantine holds freed
memory on purpose, and LeakSanitizer checks the daemon at exit instead. fds are checked always.
"""
import concurrent.futures
import errno
import http.client
import os
import subprocess
import time
import uuid

import harness
from harness import CannedAnswer, Profile, enroll, http_get, http_post_pki, proxy_config, wait_until
from test_store_postgres import postgres_store

CHALLENGE = "faults-" + uuid.uuid4().hex[:12]
WARMUP = 20
REPEAT = 200
PARALLEL = 16             # requests in flight at once (stalls take STALL_TIMEOUT each)
STALL_TIMEOUT = 0.5       # seconds: the fault profiles' timeout
MAX_RESPONSE_BYTES = 65536
RSS_SLACK_KB = 1024
SETTLE_TIMEOUT = 15.0     # for connections to close after a run
TMPFS_BYTES = 8 << 20
RUN_TIMEOUT = 120.0       # one run of REPEAT requests, at the most


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/PID/status")


def status_of(request):
    """request() -> Response; the status, or None when the connection was cut."""
    try:
        return request().status
    except (http.client.HTTPException, ConnectionError):
        return None


class FaultRuns:
    """What every fault test does: warm up, take the baseline, repeat, check the daemon."""

    def run_fault(self, proxy, request, expected_status, reason, metric, parallel=1):
        """request() sends one request and returns its Response. metric: (name, labels) of a
        counter that must grow by REPEAT."""
        pid = proxy.pid()
        for status in self.send_many(request, WARMUP, parallel):
            self.assertEqual(status, expected_status)
        time.sleep(0.2)
        counted_before = proxy.metric_value(metric[0], **metric[1]) or 0
        baseline_fds = wait_until(lambda: self.settled_fds(pid), SETTLE_TIMEOUT, "the fd count to settle")
        baseline_rss = rss_kb(pid)

        started = time.monotonic()
        statuses = self.send_many(request, REPEAT, parallel)
        self.assertLess(time.monotonic() - started, RUN_TIMEOUT)
        self.assertEqual(statuses, [expected_status] * REPEAT)

        self.assertTrue(proxy.alive(), "the proxy died")
        wait_until(lambda: fd_count(pid) == baseline_fds, SETTLE_TIMEOUT,
                   f"the fd count back at {baseline_fds} (now {fd_count(pid)})")
        grown = rss_kb(pid) - baseline_rss
        if not proxy.sanitized():
            self.assertLessEqual(grown, RSS_SLACK_KB, f"RSS grew by {grown} KiB over {REPEAT} runs")
        counted = proxy.metric_value(metric[0], **metric[1]) or 0
        self.assertGreaterEqual(counted - counted_before, REPEAT, metric)
        entries = [e for e in proxy.request_log()[-REPEAT:] if e.get("reason") == reason]
        self.assertGreaterEqual(len(entries), REPEAT * 0.9, f"access log lines with reason={reason}")
        print(f"  {reason}: fds {baseline_fds} -> {fd_count(pid)}, RSS {baseline_rss} KiB -> +{grown} KiB")

    @staticmethod
    def settled_fds(pid):
        """The fd count once it held still for 0.3 s (None while it moves)."""
        before = fd_count(pid)
        time.sleep(0.3)
        return before if fd_count(pid) == before else None

    @staticmethod
    def send_many(request, count, parallel):
        if parallel == 1:
            return [status_of(request) for _ in range(count)]
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            return list(pool.map(lambda _: status_of(request), range(count)))


class UpstreamAndDiskFaults(harness.IntegrationTestCase, FaultRuns):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmpfs = os.path.join(cls.workdir, "tmpfs")
        os.makedirs(cls.tmpfs)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "scepproxy-test", cls.tmpfs],
                                 capture_output=True, text=True, timeout=harness.CLI_TIMEOUT)
        cls.tmpfs_mounted = mounted.returncode == 0
        if cls.tmpfs_mounted:
            cls.addClassCleanup(subprocess.run, ["umount", "-l", cls.tmpfs], timeout=harness.CLI_TIMEOUT)
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        forward = f"127.0.0.1:{cls.scepserver.port}"
        cls.good = cls.start_upstream(forward_to=forward)
        cls.faulty = cls.start_upstream(forward_to=forward)
        challenge_file = cls.write_file("challenge", CHALLENGE)
        refused = f"http://127.0.0.1:{harness.unused_tcp_port()}/scep"
        fault_lines = ("ca_cache_ttl: 0s", "max_idle_connections: 0", f"max_response_bytes: {MAX_RESPONSE_BYTES}")
        timeouts = dict(connect_timeout=f"{int(STALL_TIMEOUT * 1000)}ms", timeout=f"{int(STALL_TIMEOUT * 1000)}ms")
        store = ["backend: sqlite", f"sqlite: {{ path: {os.path.join(cls.tmpfs, 'enrollments.db')} }}"]
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.good.url, challenge_file=challenge_file),
            Profile("faulty", cls.faulty.url, lines=fault_lines, **timeouts),
            Profile("refused", refused, lines=fault_lines, **timeouts),
            Profile("retry", [cls.faulty.url, cls.good.url], lines=fault_lines, **timeouts),
            Profile("pkiretry", [refused, cls.good.url], lines=fault_lines, **timeouts),
        ], metrics=True, store=store))
        issued = cls.proxy.issue_token("demo", "device-sample")
        sample = enroll(cls.workdir, cls.proxy.scep_url(issued["token"]), issued["challenge"], "device-sample")
        if sample.returncode != 0:
            raise RuntimeError("enrollment through the demo profile failed:\n" + sample.output)
        cls.pki_message = [r.body for r in cls.good.requests() if r.operation == "PKIOperation"][-1]

    def tearDown(self):
        self.faulty.set_fault(None)
        self.faulty.set_stall(False)
        self.faulty.canned.pop("GetCACert", None)

    def get(self, profile, operation="GetCACert"):
        token = self.proxy.issue_token(profile, "device-" + uuid.uuid4().hex[:8])["token"]
        return lambda: http_get(self.proxy.address, f"/scep/{token}?operation={operation}")

    def outcome(self, profile, outcome):
        return ("scepproxy_upstream_requests_total", {"profile": profile, "outcome": outcome})

    def test_upstream_refuses(self):
        self.run_fault(self.proxy, self.get("refused"), 502, "upstream_connect_failed",
                       self.outcome("refused", "connect_failed"))

    def test_upstream_resets_before_answering(self):
        self.faulty.set_fault("reset_before_answer")
        self.run_fault(self.proxy, self.get("faulty"), 502, "upstream_closed", self.outcome("faulty", "closed"))

    def test_upstream_resets_mid_answer(self):
        # The upstream sends a head and half the body, then resets: the reset comes with those
        # bytes and must be seen at once (502), not when the response timeout fires (504).
        # GetCACaps: the proxy holds that answer (to show POSTPKIOperation), so the device
        # gets a clean 502 instead of a cut answer.
        self.faulty.set_fault("reset")
        self.run_fault(self.proxy, self.get("faulty", "GetCACaps"), 502, "upstream_closed",
                       self.outcome("faulty", "closed"))

    def test_upstream_closes_without_answer(self):
        self.faulty.set_fault("close")
        self.run_fault(self.proxy, self.get("faulty"), 502, "upstream_closed", self.outcome("faulty", "closed"))

    def test_upstream_stalls(self):
        self.faulty.set_stall(True)
        self.run_fault(self.proxy, self.get("faulty"), 504, "upstream_timeout", self.outcome("faulty", "timeout"),
                       parallel=PARALLEL)

    def test_upstream_answers_garbage(self):
        self.faulty.set_fault("garbage")
        self.run_fault(self.proxy, self.get("faulty"), 502, "upstream_protocol_error",
                       self.outcome("faulty", "protocol_error"))

    def test_upstream_answers_an_oversized_body(self):
        self.faulty.set_fault("oversized")
        self.run_fault(self.proxy, self.get("faulty"), 502, "upstream_body_too_large",
                       self.outcome("faulty", "body_too_large"))

    def test_get_ca_cert_is_retried_once_on_the_other_upstream(self):
        request = self.get("retry")
        for fault in ("reset_before_answer", "close", "garbage", "oversized", "stall", "5xx"):
            with self.subTest(fault=fault):
                if fault == "stall":
                    self.faulty.set_stall(True)
                elif fault == "5xx":
                    self.faulty.canned["GetCACert"] = CannedAnswer(503, "text/plain", b"busy\n")
                else:
                    self.faulty.set_fault(fault)
                faulty_before = self.faulty.request_count()
                statuses = [status_of(request) for _ in range(6)]
                self.assertEqual(statuses, [200] * 6)
                # Round-robin put some first attempts on the faulty upstream: each was retried.
                self.assertGreater(self.faulty.request_count(), faulty_before)
                self.tearDown()

    def test_pki_operation_is_retried_only_when_its_connect_failed(self):
        # "pkiretry": a refused upstream, then a good one. Nothing of the request went out
        # to the refused one, so it goes to the good one: forwarded, exactly once.
        token = self.proxy.issue_token("pkiretry", "device-pkiretry")["token"]
        before = [r for r in self.good.requests() if r.operation == "PKIOperation"]
        response = http_post_pki(self.proxy.address, f"/scep/{token}?operation=PKIOperation", self.pki_message)
        self.assertEqual(response.status, 200, response.body)
        after = [r for r in self.good.requests() if r.operation == "PKIOperation"]
        self.assertEqual(len(after), len(before) + 1)
        # "retry": the faulty upstream closes without answering after reading the request:
        # bytes went out, so a PKIOperation that went there is never sent to the good one.
        self.faulty.set_fault("close")
        for attempt in range(4):
            token = self.proxy.issue_token("retry", f"device-retry-{attempt}")["token"]
            faulty_before = [r.operation for r in self.faulty.requests()].count("PKIOperation")
            good_before = [r.operation for r in self.good.requests()].count("PKIOperation")
            response = http_post_pki(self.proxy.address, f"/scep/{token}?operation=PKIOperation", self.pki_message)
            went_to_faulty = [r.operation for r in self.faulty.requests()].count("PKIOperation") - faulty_before
            went_to_good = [r.operation for r in self.good.requests()].count("PKIOperation") - good_before
            if went_to_faulty:
                self.assertEqual((response.status, went_to_faulty, went_to_good), (502, 1, 0))
            else:
                self.assertEqual((response.status, went_to_good), (200, 1))

    def test_sqlite_disk_full(self):
        if not self.tmpfs_mounted:
            self.skipTest("cannot mount a tmpfs here (not root?)")
        token = self.proxy.issue_token("demo", "device-diskfull")["token"]
        pki = lambda: http_post_pki(self.proxy.address, f"/scep/{token}?operation=PKIOperation",  # noqa: E731
                                    self.pki_message)
        filler = os.path.join(self.tmpfs, "filler")
        with open(filler, "wb") as f:
            chunk = b"\0" * 65536
            for _ in range(TMPFS_BYTES // len(chunk) + 16):
                try:
                    f.write(chunk)
                    f.flush()
                except OSError as error:
                    self.assertEqual(error.errno, errno.ENOSPC)
                    break
            else:
                self.fail("the tmpfs never filled up")
        try:
            # Reading still works: GetCACert needs no write.
            self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACert").status, 200)
            # Binding the token to the transaction is a write: refused, fail closed.
            self.run_fault(self.proxy, pki, 503, "store_unavailable",
                           ("scepproxy_store_operations_total",
                            {"backend": "sqlite", "op": "bind_transaction", "outcome": "unavailable"}))
            self.assertTrue(self.proxy.log_events("store_unavailable"))
        finally:
            os.remove(filler)
        # Space again: the same request goes through.
        self.assertEqual(pki().status, 200)


class StoreDown(harness.IntegrationTestCase, FaultRuns):
    """PostgreSQL stopped (test/postgres_server.sh down): every token check fails closed with 503."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.postgres = cls.start_postgres()
        conninfo_file = cls.postgres.write_conninfo(os.path.join(cls.workdir, "pg.conninfo"))
        cls.upstream = cls.start_upstream(canned={"GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\n")})
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [Profile("canned", cls.upstream.url)], metrics=True,
                                                 store=postgres_store(conninfo_file, cache_ttl=0)))

    def test_postgres_stopped(self):
        token = self.proxy.issue_token("canned", "device-pg")["token"]
        request = lambda: http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps")  # noqa: E731
        self.assertEqual(request().status, 200)
        self.postgres.down()
        try:
            self.run_fault(self.proxy, request, 503, "store_unavailable",
                           ("scepproxy_store_operations_total",
                            {"backend": "postgres", "op": "check_access", "outcome": "unavailable"}))
        finally:
            self.postgres.up()
        wait_until(lambda: request().status == 200, 30, "the proxy to use PostgreSQL again")


if __name__ == "__main__":
    harness.main()
