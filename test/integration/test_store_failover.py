#!/usr/bin/env python3
# Integration: PostgreSQL failover (multi-host conninfo, primary killed, standby promoted) and admin API calls right after a PostgreSQL restart.
import os
import threading
import time
import uuid

import harness
from harness import Profile, enroll, http_get, http_post_pki, json_request, proxy_config, wait_until

CHALLENGE = "failover-" + uuid.uuid4().hex[:12]
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
STORE_TIMEOUT = 2.0      # seconds: store.postgres.timeout of these proxies
RECOVERY_BOUND = 20.0    # seconds after the promotion by which enrollments go on (the documented promise)
POOL_SIZE = 2


def postgres_store(conninfo_file):
    # cache_ttl 0: every request asks the store, none is answered from what a worker saw before.
    return ["backend: postgres",
            f"postgres: {{ conninfo_file: {conninfo_file}, pool_size: {POOL_SIZE}, "
            f"timeout: {int(STORE_TIMEOUT * 1000)}ms, connect_timeout: {int(STORE_TIMEOUT * 1000)}ms }}",
            "cache_ttl: 0s"]


class PostgresStoreCase(harness.IntegrationTestCase):
    """A scepserver behind a recording upstream, and helpers for a proxy on a PostgreSQL store."""

    @classmethod
    def start_peers(cls):
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        cls.challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.admin_token_file = cls.write_file("admin.token", ADMIN_TOKEN)

    @classmethod
    def start_proxy_on(cls, conninfo_file):
        cls.proxy = cls.start_proxy(proxy_config(
            cls.workdir, [Profile("demo", cls.upstream.url, challenge_file=cls.challenge_file)],
            admin_token_file=cls.admin_token_file, metrics=True, store=postgres_store(conninfo_file)))

    def admin(self, method, target, body=None):
        return json_request(self.proxy.listener_address("admin"), method, target, body, token=ADMIN_TOKEN)

    def issue(self, device):
        response, answer = self.admin("POST", "/api/v1/enrollments", {"profile": "demo", "device_id": device})
        self.assertEqual(response.status, 201, response.body)
        self.assertRegex(answer.get("token") or "", r"^[0-9a-f-]{36}$", answer)
        return answer

    def caps(self, token):
        return http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps")

    def assertEnrolls(self, issued, common_name):
        result = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], common_name)
        self.assertEqual(result.returncode, 0, result.output)
        self.assertTrue(harness.certificate_verifies(self.scepserver.ca_pem, result.certificate))

    def fill_pool(self, token, connections):
        """Concurrent requests until the proxy holds `connections()` == POOL_SIZE connections: the
        failover then has pooled connections to find dead."""
        def burst():
            threads = [threading.Thread(target=self.caps, args=(token,), daemon=True) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(harness.HTTP_TIMEOUT)
            return connections() >= POOL_SIZE
        wait_until(burst, 15, f"the proxy to hold {POOL_SIZE} PostgreSQL connections", interval=0.1)


class PrimaryKilledStandbyPromoted(PostgresStoreCase):
    """conninfo_file names the primary, then its standby (target_session_attrs=read-write). The
    primary is killed (pg_ctl stop -m immediate), the standby promoted: the proxy, not restarted,
    drops its dead connections, finds the new primary and enrollments go on."""

    # The old primary's address, once it is dead: refuses connections (a stopped server on a live
    # host). The subclass makes it a host that never answers.
    silent_old_primary = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pair = cls.start_postgres_pair(connect_timeout=2)
        conninfo_file = cls.pair.write_conninfo(os.path.join(cls.workdir, "pg.conninfo"))
        cls.start_peers()
        cls.start_proxy_on(conninfo_file)

    def proxy_connections(self, server):
        return int(self.pair.psql(server, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'scepproxy'"))

    def test_enrollments_go_on_after_the_primary_is_killed_and_the_standby_promoted(self):
        pid = self.proxy.pid()
        before = self.issue("device-issued-before")
        consumed = self.issue("device-consumed-before")
        self.assertEnrolls(consumed, "device-consumed-before")
        consumed_message = [r.body for r in self.upstream.requests() if r.operation == "PKIOperation"][-1]
        self.assertEqual(self.caps(before["token"]).status, 200)
        self.fill_pool(before["token"], lambda: self.proxy_connections("primary"))
        # Replication is asynchronous: what the standby hasn't replayed is lost in a failover.
        self.pair.wait_for_standby_to_catch_up()

        self.pair.kill_primary()
        if self.silent_old_primary:
            listener = harness.SilentListener(self.pair.ports["primary"])
            self.addCleanup(listener.close)
        # No primary: requests get their 503 within the store timeout, none hangs.
        for _ in range(3):
            response = self.caps(before["token"])
            self.assertEqual((response.status, response.body.rstrip(b"\n")), (503, b"store_unavailable"))
            self.assertLess(response.elapsed, STORE_TIMEOUT + 2.0)

        promoted_at = time.monotonic()
        self.pair.promote()
        promotion_took = time.monotonic() - promoted_at
        wait_until(lambda: self.caps(before["token"]).status == 200, RECOVERY_BOUND,
                   "the proxy to answer from the promoted standby", interval=0.1)
        answered_after = time.monotonic() - promoted_at
        # Enrollments go on: one with a token issued before the failover, one with a token issued after.
        self.assertEnrolls(before, "device-issued-before")
        enrolled_after = time.monotonic() - promoted_at
        after = self.issue("device-issued-after")
        self.assertEnrolls(after, "device-issued-after")
        print(f"  promotion took {promotion_took:.2f} s; first store answer {answered_after:.2f} s, "
              f"first enrollment done {enrolled_after:.2f} s after the promotion started")
        self.assertLess(enrolled_after, RECOVERY_BOUND)

        # A token consumed before the failover stays consumed.
        response = http_post_pki(self.proxy.address, f"/scep/{consumed['token']}?operation=PKIOperation",
                                 consumed_message)
        self.assertEqual((response.status, response.body.rstrip(b"\n")), (403, b"invalid_token"))
        entry = self.proxy.wait_for_request_log(token=harness.token_id(consumed["token"]), op="PKIOperation",
                                                status=403)
        self.assertEqual(entry.get("reason"), "token_consumed")
        response, answer = self.admin("GET", f"/api/v1/enrollments/{consumed['token']}")
        self.assertEqual((response.status, answer.get("state")), (200, "consumed"), response.body)

        # Not restarted; its connections are on the new primary.
        self.assertTrue(self.proxy.alive())
        self.assertEqual(self.proxy.pid(), pid)
        self.assertEqual(len([e for e in self.proxy.log_events("listening") if e.get("listener") == "scep"]), 1)
        self.assertGreaterEqual(self.proxy_connections("standby"), 1)
        self.assertTrue(self.proxy.log_events("store_connect_failed"), "no store_connect_failed line")
        self.assertTrue(self.proxy.log_events("store_reconnected"), "no store_reconnected line")


class PrimaryKilledSilentStandbyPromoted(PrimaryKilledStandbyPromoted):
    """The same, but the dead primary's address doesn't refuse: it accepts TCP connections and never
    answers (a host that hangs, or whose packets a firewall drops). libpq's own multi-host connect
    would wait there until the deadline, every time, and never reach the standby: the proxy tries
    one host at a time, `connect_timeout` each, starting after the one that failed."""

    silent_old_primary = True


class AdminApiAfterRestart(PostgresStoreCase):
    """PostgreSQL stopped and started again (pg_ctl stop -m fast, start): every pooled connection
    is dead. Each admin call works on the first try; with the server down, each answers 503."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.postgres = cls.start_postgres()
        conninfo_file = cls.postgres.write_conninfo(os.path.join(cls.workdir, "pg.conninfo"))
        cls.start_peers()
        cls.start_proxy_on(conninfo_file)

    def tearDown(self):
        try:
            self.postgres.up()
        except RuntimeError:
            pass   # already running

    def proxy_connections(self):
        return int(self.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'scepproxy'"))

    def restart_with_full_pool(self, token):
        self.fill_pool(token, self.proxy_connections)
        self.postgres.restart()

    def test_each_admin_call_works_on_the_first_try_after_a_restart(self):
        token = self.issue("device-restart")["token"]
        issued_again = None
        calls = [
            ("issue", lambda: self.admin("POST", "/api/v1/enrollments",
                                         {"profile": "demo", "device_id": "device-restart"}), 201),
            ("show", lambda: self.admin("GET", f"/api/v1/enrollments/{token}"), 200),
            ("device set", lambda: self.admin("PUT", "/api/v1/devices/device-restart",
                                              {"enrolled": True, "compliant": True}), 200),
            ("device show", lambda: self.admin("GET", "/api/v1/devices/device-restart"), 200),
            ("revoke", lambda: self.admin("DELETE", f"/api/v1/enrollments/{token}"), 200),
        ]
        for name, call, status in calls:
            with self.subTest(call=name):
                self.restart_with_full_pool(token)
                response, answer = call()
                self.assertEqual(response.status, status, f"{name} after a restart: {response.body}")
                if name == "issue":
                    self.assertRegex(answer.get("token") or "", r"^[0-9a-f-]{36}$", answer)
                    issued_again = answer
                    # The token it handed out is stored and works.
                    self.assertEqual(self.caps(answer["token"]).status, 200)
        # The device enrolls with the token issued right after a restart.
        self.assertIsNotNone(issued_again)
        self.assertEnrolls(issued_again, "device-restart")

    def test_an_admin_call_that_cannot_reach_the_store_answers_503(self):
        token = self.issue("device-down")["token"]
        self.postgres.down()
        calls = [
            ("issue", lambda: self.admin("POST", "/api/v1/enrollments", {"profile": "demo", "device_id": "device-down"})),
            ("show", lambda: self.admin("GET", f"/api/v1/enrollments/{token}")),
            ("revoke", lambda: self.admin("DELETE", f"/api/v1/enrollments/{token}")),
            ("device set", lambda: self.admin("PUT", "/api/v1/devices/device-down",
                                              {"enrolled": True, "compliant": False})),
            ("device show", lambda: self.admin("GET", "/api/v1/devices/device-down")),
        ]
        for name, call in calls:
            with self.subTest(call=name):
                response, answer = call()
                self.assertEqual((response.status, answer), (503, {"error": "store_unavailable"}), name)
                self.assertLess(response.elapsed, STORE_TIMEOUT + 2.0, name)
        self.postgres.up()
        # Nothing was revoked or changed meanwhile.
        wait_until(lambda: self.caps(token).status == 200, 15, "the store to answer again", interval=0.1)
        response, answer = self.admin("GET", "/api/v1/devices/device-down")
        self.assertEqual((response.status, answer.get("compliant")), (200, True), response.body)


if __name__ == "__main__":
    harness.main()
