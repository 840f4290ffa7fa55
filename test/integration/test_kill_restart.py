#!/usr/bin/env python3
# Integration: the proxy killed (SIGKILL) while a PKIOperation is upstream, then restarted: the token stays bound to that transaction (SQLite and PostgreSQL).
import os
import subprocess
import threading
import uuid

import harness
from harness import Profile, enroll, http_post_pki, json_request, proxy_config, wait_until

CHALLENGE = "kill-" + uuid.uuid4().hex[:12]
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex


class KillMidRequest:
    """Mixed into one test class per store (store_lines). Profile "held": its CA (a recording upstream in its own process, forwarding to a scepserver)
    holds PKIOperations unanswered, so the proxy can be killed with one upstream. Profile "demo"
    (an upstream that answers) gives another device's pkiMessage, with another transactionID.
    """

    @classmethod
    def store_lines(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        forward = f"127.0.0.1:{cls.scepserver.port}"
        cls.sample_upstream = cls.start_upstream(forward_to=forward)
        cls.ca = cls.start_upstream_process("ca", forward, stall_operation="PKIOperation", record_bodies=True)
        challenge_file = cls.write_file("challenge", CHALLENGE)
        admin_token_file = cls.write_file("admin.token", ADMIN_TOKEN)
        cls.config = proxy_config(cls.workdir, [
            Profile("demo", cls.sample_upstream.url, challenge_file=challenge_file),
            Profile("held", cls.ca.url, challenge_file=challenge_file, timeout="60s"),
        ], admin_token_file=admin_token_file, store=cls.store_lines())
        cls.proxy = cls.start_proxy(cls.config)
        issued = cls.proxy.issue_token("demo", "device-other")
        other = enroll(cls.workdir, cls.proxy.scep_url(issued["token"]), issued["challenge"], "device-other")
        if other.returncode != 0:
            raise RuntimeError("enrollment through the demo profile failed:\n" + other.output)
        cls.other_message = [r.body for r in cls.sample_upstream.requests() if r.operation == "PKIOperation"][-1]

    def record(self, proxy, token):
        response, answer = json_request(proxy.listener_address("admin"), "GET", f"/api/v1/enrollments/{token}",
                                        token=ADMIN_TOKEN)
        self.assertEqual(response.status, 200, response.body)
        return answer

    def after_the_kill(self):
        """Checks on the store the killed proxy left, before the restart."""

    def test_a_token_bound_when_the_proxy_was_killed_stays_bound_to_that_transaction(self):
        issued = self.proxy.issue_token("held", "device-killed")
        token = issued["token"]
        device = {}

        def run_device():
            device["result"] = enroll(self.workdir, self.proxy.scep_url(token), issued["challenge"], "device-killed")
        thread = threading.Thread(target=run_device, daemon=True)
        thread.start()
        wait_until(lambda: "PKIOperation" in self.ca.operations(), harness.ENROLL_TIMEOUT,
                   "the device's PKIOperation to reach the CA", interval=0.05)
        # Bound in the store before it went upstream.
        bound = self.record(self.proxy, token)
        self.assertEqual(bound["state"], "active")
        self.assertIsNotNone(bound["transaction_id"])

        self.proxy.process.kill()   # SIGKILL: no drain, no goodbye
        self.proxy.process.wait(harness.STOP_TIMEOUT)
        thread.join(harness.ENROLL_TIMEOUT)
        self.assertFalse(thread.is_alive(), "scepclient still running")
        self.assertNotEqual(device["result"].returncode, 0, "the device got an answer from a killed proxy")
        # Killed while the request was upstream: the proxy never answered it (the access log line
        # is written after the answer).
        self.assertEqual([e for e in self.proxy.request_log()
                          if e.get("token") == harness.token_id(token) and e.get("op") == "PKIOperation"], [])
        message = self.ca.bodies()[-1]
        self.after_the_kill()

        restarted = self.start_proxy(self.config, name="proxy-restarted")
        self.assertEqual(self.record(restarted, token)["transaction_id"], bound["transaction_id"])
        # Another transaction on this token is refused, and nothing of it reaches the CA.
        seen = len(self.ca.requests())
        response = http_post_pki(restarted.address, f"/scep/{token}?operation=PKIOperation", self.other_message)
        self.assertEqual((response.status, response.body.rstrip(b"\n")), (403, b"transaction_mismatch"))
        self.assertEqual(len(self.ca.requests()), seen)

        # The CA answers again (restarted on its port, holding nothing): the device's resend of the
        # same message goes through and gets its certificate.
        self.ca.kill()
        self.ca.stall_operation = None
        self.ca.start()
        response = http_post_pki(restarted.address, f"/scep/{token}?operation=PKIOperation", message)
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual(response.content_type, "application/x-pki-message")
        entry = restarted.wait_for_request_log(token=harness.token_id(token), op="PKIOperation", status=200)
        self.assertEqual(entry.get("pki_status"), "SUCCESS")
        self.assertEqual(self.ca.bodies()[-1], message)
        consumed = self.record(restarted, token)
        self.assertEqual((consumed["state"], consumed["transaction_id"]), ("consumed", bound["transaction_id"]))


class KillMidRequestSqlite(KillMidRequest, harness.IntegrationTestCase):
    @classmethod
    def store_lines(cls):
        cls.database = os.path.join(cls.workdir, "enrollments.db")
        return ["backend: sqlite", f"sqlite: {{ path: {cls.database} }}"]

    def integrity_check(self):
        result = subprocess.run(["sqlite3", self.database, "PRAGMA integrity_check"], capture_output=True,
                                text=True, timeout=harness.CLI_TIMEOUT)
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "ok"), result.stderr)

    def after_the_kill(self):
        # The file as the killed proxy left it (its WAL not checkpointed): sound.
        self.integrity_check()

    def tearDown(self):
        self.integrity_check()


class KillMidRequestPostgres(KillMidRequest, harness.IntegrationTestCase):
    @classmethod
    def store_lines(cls):
        cls.postgres = cls.start_postgres()
        conninfo_file = cls.postgres.write_conninfo(os.path.join(cls.workdir, "pg.conninfo"))
        return ["backend: postgres", f"postgres: {{ conninfo_file: {conninfo_file}, pool_size: 2 }}"]

    def after_the_kill(self):
        # The killed proxy's connections are gone on the server's side too.
        wait_until(lambda: self.postgres.psql("SELECT count(*) FROM pg_stat_activity "
                                              "WHERE application_name = 'scepproxy'") == "0",
                   10, "the killed proxy's connections to close", interval=0.05)


if __name__ == "__main__":
    harness.main()
