#!/usr/bin/env python3
# Integration: two proxies sharing one PostgreSQL store (scale-out), and a store outage (stopped or frozen server) and recovery.
import os
import time
import uuid

import harness
from harness import CannedAnswer, Profile, enroll, http_get, http_post_pki, json_request, proxy_config

CHALLENGE = "scale-out-" + uuid.uuid4().hex[:12]
PKCS7_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "pkcs7", "data")
CACHE_TTL = 1.0           # seconds: store.cache_ttl of these proxies
STORE_TIMEOUT = 1.0       # seconds: store.postgres.timeout of these proxies
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex


def read_capture(name):
    with open(os.path.join(PKCS7_DATA, name), "rb") as f:
        return f.read()


def postgres_store(conninfo_file, cache_ttl=CACHE_TTL):
    return ["backend: postgres",
            f"postgres: {{ conninfo_file: {conninfo_file}, pool_size: 2, timeout: {int(STORE_TIMEOUT * 1000)}ms, "
            f"connect_timeout: {int(STORE_TIMEOUT * 1000)}ms }}",
            f"cache_ttl: {int(cache_ttl * 1000)}ms"]


class SharedStore(harness.IntegrationTestCase):
    """Proxies A and B on one PostgreSQL database, like two instances behind a load balancer."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.postgres = cls.start_postgres()
        conninfo_file = cls.postgres.write_conninfo(os.path.join(cls.workdir, "pg.conninfo"))
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        # A profile whose PKIOperations get a canned CertRep FAILURE: a well-formed request can be
        # sent again and again without using the token up.
        cls.canned = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n"),
            "PKIOperation": CannedAnswer(200, "application/x-pki-message", read_capture("certrep-failure.der")),
        })
        challenge_file = cls.write_file("challenge", CHALLENGE)
        admin_token_file = cls.write_file("admin.token", ADMIN_TOKEN)
        profiles = [Profile("demo", cls.upstream.url, challenge_file=challenge_file),
                    Profile("canned", cls.canned.url)]
        cls.proxy_a = cls.start_proxy(proxy_config(cls.workdir, profiles, admin_token_file=admin_token_file,
                                                   metrics=True, store=postgres_store(conninfo_file)), name="proxy-a")
        cls.proxy_b = cls.start_proxy(proxy_config(cls.workdir, profiles, admin_token_file=admin_token_file,
                                                   metrics=True, store=postgres_store(conninfo_file)), name="proxy-b")
        cls.pki_request = read_capture("pkcsreq.der")

    def admin(self, proxy, method, target, body=None):
        response, answer = json_request(proxy.listener_address("admin"), method, target, body, token=ADMIN_TOKEN)
        self.assertLess(response.status, 300, (response.status, response.body))
        return answer

    def issue_through(self, proxy, profile, device):
        return self.admin(proxy, "POST", "/api/v1/enrollments", {"profile": profile, "device_id": device})

    def assertRefusedOnceCacheTtlPassed(self, probe, started, body, what):
        """From cache_ttl + 1 s after `started` on, every probe() (-> Response; new connections, so
        both workers answer some) is refused with `body`."""
        time.sleep(max(0.0, started + CACHE_TTL + 1.0 - time.monotonic()))
        for attempt in range(8):
            response = probe()
            self.assertEqual((response.status, response.body.rstrip(b"\n")), (403, body),
                             f"{what}, probe {attempt} at {time.monotonic() - started:.2f}s")

    def test_a_token_issued_through_one_proxy_enrolls_through_the_other(self):
        issued = self.issue_through(self.proxy_a, "demo", "device-scale-out")
        self.assertTrue(self.proxy_a.alive() and self.proxy_b.alive())
        result = enroll(self.workdir, self.proxy_b.scep_url(issued["token"]), issued["challenge"], "device-scale-out")
        self.assertEqual(result.returncode, 0, result.output)
        self.assertTrue(harness.certificate_verifies(self.scepserver.ca_pem, result.certificate))
        entry = self.proxy_b.wait_for_request_log(token=harness.token_id(issued["token"]), op="PKIOperation",
                                                  status=200)
        self.assertEqual(entry.get("profile"), "demo")
        # Proxy A only issued it: no SCEP request for it went through A.
        self.assertEqual([e for e in self.proxy_a.request_log() if e.get("token") == harness.token_id(issued["token"])],
                         [])

    def test_a_revocation_through_one_proxy_reaches_the_other_within_cache_ttl(self):
        token = self.issue_through(self.proxy_a, "demo", "device-revoked")["token"]
        target = f"/scep/{token}?operation=GetCACaps"
        # Both proxies have answered (and cached) this token before it is revoked.
        for proxy in (self.proxy_a, self.proxy_b):
            for _ in range(4):   # both workers of each
                self.assertEqual(http_get(proxy.address, target).status, 200)
        started = time.monotonic()
        self.admin(self.proxy_a, "DELETE", f"/api/v1/enrollments/{token}")
        # The proxy that revoked it forgets its cached answers at once.
        for _ in range(4):
            self.assertEqual(http_get(self.proxy_a.address, target).status, 403)
        self.assertRefusedOnceCacheTtlPassed(lambda: http_get(self.proxy_b.address, target), started,
                                             b"invalid_token", "the revoked token on proxy B")

    def test_a_device_marked_non_compliant_through_one_proxy_is_refused_by_the_other(self):
        token = self.issue_through(self.proxy_a, "canned", "device-turns-bad")["token"]
        target = f"/scep/{token}?operation=PKIOperation"
        for _ in range(4):
            response = http_post_pki(self.proxy_b.address, target, self.pki_request)
            self.assertEqual(response.status, 200, response.body)
        started = time.monotonic()
        self.admin(self.proxy_a, "PUT", "/api/v1/devices/device-turns-bad", {"enrolled": True, "compliant": False})
        self.assertRefusedOnceCacheTtlPassed(lambda: http_post_pki(self.proxy_b.address, target, self.pki_request),
                                             started, b"device_not_compliant", "the non-compliant device on proxy B")
        # GetCACert/GetCACaps don't check the device.
        self.assertEqual(http_get(self.proxy_b.address, f"/scep/{token}?operation=GetCACaps").status, 200)

    def test_store_operations_are_counted_by_backend_op_and_outcome(self):
        token = self.issue_through(self.proxy_a, "demo", "device-counted")["token"]
        before = self.proxy_b.metric("scepproxy_store_operations_total",
                              backend="postgres", op="check_access", outcome="ok")
        self.assertEqual(http_get(self.proxy_b.address, f"/scep/{token}?operation=GetCACaps").status, 200)
        after = self.proxy_b.metric("scepproxy_store_operations_total",
                             backend="postgres", op="check_access", outcome="ok")
        hits = self.proxy_b.metric("scepproxy_store_operations_total",
                            backend="postgres", op="check_access", outcome="cache_hit")
        # Asked once, or answered from the cache of the worker that asked before.
        self.assertGreaterEqual(after - before + hits, 1)
        issued = self.proxy_a.metric("scepproxy_store_operations_total",
                              backend="postgres", op="issue_token", outcome="ok")
        self.assertGreaterEqual(issued, 1)
        text = http_get(self.proxy_b.listener_address("metrics"), "/metrics").body.decode()
        self.assertIn('scepproxy_store_duration_seconds_count{backend="postgres",op="check_access"}', text)


class StoreOutage(harness.IntegrationTestCase):
    """One proxy on a PostgreSQL server that is stopped, or stops answering, and comes back."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.postgres = cls.start_postgres()
        conninfo_file = cls.postgres.write_conninfo(os.path.join(cls.workdir, "pg.conninfo"))
        cls.upstream = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n"),
        })
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [Profile("demo", cls.upstream.url)], metrics=True,
                                                 store=postgres_store(conninfo_file, cache_ttl=0)))

    def tearDown(self):
        # Whatever a test did to the server, the next one starts with it running.
        self.postgres.thaw()
        try:
            self.postgres.up()
        except RuntimeError:
            pass   # already running

    def caps(self, token):
        return http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps")

    def assertRefusedWithin(self, token, bound, what):
        started = time.monotonic()
        response = self.caps(token)
        elapsed = time.monotonic() - started
        self.assertEqual((response.status, response.body.rstrip(b"\n")), (503, b"store_unavailable"), what)
        self.assertLess(elapsed, bound, f"{what}: answered after {elapsed:.2f}s")

    def assertRecovers(self, token, what):
        harness.wait_until(lambda: self.caps(token).status == 200, 15, f"requests to succeed again after {what}",
                           interval=0.1)
        self.assertTrue(self.proxy.alive())

    def unavailable_count(self):
        return self.proxy.metric("scepproxy_store_operations_total",
                            backend="postgres", op="check_access", outcome="unavailable")

    def test_a_stopped_server_means_503_with_a_log_line_and_a_count_then_recovery(self):
        token = self.proxy.issue_token("demo", "device-outage")["token"]
        self.assertEqual(self.caps(token).status, 200)
        counted_before = self.unavailable_count()
        self.postgres.down()
        for _ in range(3):
            self.assertRefusedWithin(token, STORE_TIMEOUT + 2.0, "with the server stopped")
        self.assertTrue(self.proxy.alive())
        self.assertGreaterEqual(self.unavailable_count() - counted_before, 3)
        rejected = self.proxy.metric("scepproxy_rejections_total", reason="store_unavailable")
        self.assertGreaterEqual(rejected, 3)
        warnings = [harness.parse_logfmt(line) for line in harness.read_text(self.proxy.stdout_path).splitlines()]
        unavailable = [w for w in warnings if w.get("event") == "store_unavailable"]
        self.assertTrue(unavailable, "no store_unavailable log line")
        self.assertIn("PostgreSQL", unavailable[-1].get("detail", ""))
        self.assertTrue([w for w in warnings if w.get("event") == "store_connect_failed"],
                        "no store_connect_failed log line")
        self.assertNotIn("host=", self.proxy.output(), "the connection string reached the log")

        self.postgres.up()
        self.assertRecovers(token, "the server restarted")
        self.proxy.wait_for_request_log(event="request", token=harness.token_id(token), status=200)
        self.assertTrue([w for w in (harness.parse_logfmt(line) for line in
                                     harness.read_text(self.proxy.stdout_path).splitlines())
                         if w.get("event") == "store_reconnected"], "no store_reconnected log line")

    def test_a_server_that_stops_answering_costs_no_more_than_the_timeout(self):
        token = self.proxy.issue_token("demo", "device-frozen")["token"]
        self.assertEqual(self.caps(token).status, 200)
        self.postgres.freeze()
        try:
            # Pooled connections hang mid-query, new ones mid-handshake: both bounded by the timeout.
            for _ in range(3):
                self.assertRefusedWithin(token, STORE_TIMEOUT + 2.0, "with the server frozen")
            self.assertTrue(self.proxy.alive())
        finally:
            self.postgres.thaw()
        self.assertRecovers(token, "the server answers again")


if __name__ == "__main__":
    harness.main()
