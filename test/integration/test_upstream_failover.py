#!/usr/bin/env python3
# Integration: two upstreams per profile — health checks take a killed one out and bring it back, GetCACert fails over, an in-flight PKIOperation is never re-sent.
import threading
import time
import uuid

import harness
from harness import Profile, enroll, http_get, http_post_pki, proxy_config, wait_until

CHALLENGE = "failover-" + uuid.uuid4().hex[:12]
INTERVAL = 0.5   # health_check.interval of the "pair" profile, seconds
FALL = 2
RISE = 2
SLACK = 5.0      # generous: the machine is small and shared; the bounds below are upper bounds
HEALTH_CHECK = f"health_check: {{ interval: {int(INTERVAL * 1000)}ms, timeout: 400ms, fall: {FALL}, rise: {RISE} }}"


class UpstreamFailover(harness.IntegrationTestCase):
    """Profile "pair": upstreams a and b (recording upstreams in their own processes, both
    forwarding to one scepserver, so one CA), checked every INTERVAL. Profile "passive": c and b,
    checked only at start-up, so that only refused connections can take c out."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        forward = f"127.0.0.1:{cls.scepserver.port}"
        cls.sample_upstream = cls.start_upstream(forward_to=forward)
        # PKIOperations are recorded, then held unanswered: one can be caught in flight.
        cls.a = cls.start_upstream_process("a", forward, stall_operation="PKIOperation")
        cls.b = cls.start_upstream_process("b", forward, stall_operation="PKIOperation")
        cls.c = cls.start_upstream_process("c", forward)
        challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.sample_upstream.url, challenge_file=challenge_file),
            Profile("pair", [cls.a.url, cls.b.url], connect_timeout="1s", timeout="20s",
                    lines=("ca_cache_ttl: 0s", HEALTH_CHECK)),
            Profile("passive", [cls.c.url, cls.b.url], connect_timeout="1s", timeout="5s",
                    lines=("ca_cache_ttl: 0s", "health_check: { interval: 100s, timeout: 1s, fall: 1, rise: 1 }")),
        ], metrics=True))
        # A real pkiMessage (from an enrollment through "demo") for the PKIOperation test.
        issued = cls.proxy.issue_token("demo", "device-sample")
        sample = enroll(cls.workdir, cls.proxy.scep_url(issued["token"]), issued["challenge"], "device-sample")
        if sample.returncode != 0:
            raise RuntimeError("enrollment through the demo profile failed:\n" + sample.output)
        cls.pki_message = [r.body for r in cls.sample_upstream.requests() if r.operation == "PKIOperation"][-1]

    def up(self, upstream, profile="pair"):
        return self.proxy.metric_value("scepproxy_upstream_up", profile=profile, upstream=f"127.0.0.1:{upstream.port}")

    def connect_failures(self, profile):
        return self.proxy.metric_value("scepproxy_upstream_requests_total", profile=profile, outcome="connect_failed")

    def setUp(self):
        # Every test starts with a and b running and in service.
        for upstream in (self.a, self.b):
            if not upstream.alive():
                upstream.start()
        wait_until(lambda: self.up(self.a) == 1 and self.up(self.b) == 1, INTERVAL * RISE + SLACK,
                   "both upstreams of profile pair in service")
        self.token = self.proxy.issue_token("pair", "device-" + uuid.uuid4().hex[:8])["token"]

    def get_ca_cert(self, token=None):
        return http_get(self.proxy.address, f"/scep/{token or self.token}?operation=GetCACert").status

    def test_killed_upstream_is_taken_out_within_interval_times_fall(self):
        for _ in range(8):
            self.assertEqual(self.get_ca_cert(), 200)
        self.assertIn("GetCACert", self.a.operations(), "round-robin never chose a")
        self.assertIn("GetCACert", self.b.operations(), "round-robin never chose b")

        # No traffic: only the health checks can notice.
        killed_at = time.monotonic()
        self.a.kill()
        wait_until(lambda: self.up(self.a) == 0, INTERVAL * (FALL + 1) + SLACK, "a taken out")
        taken_out_after = time.monotonic() - killed_at
        self.assertLessEqual(taken_out_after, INTERVAL * (FALL + 1) + SLACK)
        print(f"  taken out {taken_out_after:.2f} s after the kill (interval x fall = {INTERVAL * FALL:.1f} s)")
        self.assertEqual(self.up(self.b), 1)
        down = [e for e in self.proxy.log_events("upstream_down") if e.get("upstream") == f"127.0.0.1:{self.a.port}"]
        self.assertTrue(down, "no upstream_down line for a")
        self.assertEqual(down[-1].get("profile"), "pair")

        # Every GetCACert now goes to b, and no request even tries a.
        failures_before = self.connect_failures("pair")
        b_before = self.b.operations().count("GetCACert")
        for _ in range(6):
            self.assertEqual(self.get_ca_cert(), 200)
        self.assertEqual(self.b.operations().count("GetCACert"), b_before + 6)
        self.assertEqual(self.connect_failures("pair"), failures_before)

    def test_pki_operation_in_flight_to_a_killed_upstream_gets_502_and_is_not_resent(self):
        answer = {}

        def send():
            answer["response"] = http_post_pki(self.proxy.address, f"/scep/{self.token}?operation=PKIOperation",
                                               self.pki_message, timeout=30)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        victim = wait_until(lambda: next((u for u in (self.a, self.b) if "PKIOperation" in u.operations()), None),
                            10, "the PKIOperation to reach an upstream")
        other = self.b if victim is self.a else self.a
        killed_at = time.monotonic()
        victim.kill()
        sender.join(SLACK + 10)
        self.assertFalse(sender.is_alive(), "no answer to the PKIOperation")
        self.assertEqual(answer["response"].status, 502, answer["response"].body)
        self.assertLess(time.monotonic() - killed_at, SLACK)
        entry = self.proxy.wait_for_request_log(token=harness.token_id(self.token), op="PKIOperation")
        self.assertEqual(entry.get("status"), "502")
        self.assertEqual(entry.get("reason"), "upstream_closed")
        # Checks run meanwhile; the other upstream never sees the request.
        time.sleep(INTERVAL * 2)
        self.assertNotIn("PKIOperation", other.operations())
        self.assertEqual(victim.operations().count("PKIOperation"), 1)

    def test_restarted_upstream_gets_traffic_only_after_rise_good_checks(self):
        self.a.kill()
        wait_until(lambda: self.up(self.a) == 0, INTERVAL * (FALL + 1) + SLACK, "a taken out")
        seen_before_restart = len(self.a.requests())
        self.a.start()   # the same port
        restarted_at = time.monotonic()

        def a_got_get_ca_cert():
            self.assertEqual(self.get_ca_cert(), 200)
            return "GetCACert" in [r["operation"] for r in self.a.requests()[seen_before_restart:]]
        wait_until(a_got_get_ca_cert, INTERVAL * (RISE + 2) + SLACK, "a GetCACert to reach the restarted a",
                   interval=0.05)
        self.assertEqual(self.up(self.a), 1)
        print(f"  back in service and chosen {time.monotonic() - restarted_at:.2f} s after the restart "
              f"(interval x rise = {INTERVAL * RISE:.1f} s)")
        since_restart = [r["operation"] for r in self.a.requests()[seen_before_restart:]]
        checks_first = since_restart[:since_restart.index("GetCACert")]
        self.assertGreaterEqual(checks_first.count("GetCACaps"), RISE, since_restart)
        self.assertEqual(set(checks_first), {"GetCACaps"}, since_restart)
        up = [e for e in self.proxy.log_events("upstream_up") if e.get("upstream") == f"127.0.0.1:{self.a.port}"]
        self.assertTrue(up, "no upstream_up line for a")

    def test_refused_connection_takes_an_upstream_out_at_once(self):
        # "passive" checks only at start-up: what happens here is the workers' doing.
        token = self.proxy.issue_token("passive", "device-passive")["token"]
        self.assertEqual(self.up(self.c, "passive"), 1)
        self.c.kill()
        failures_before = self.connect_failures("passive")
        # Each worker's round-robin starts at c: the first request finds it refusing and is retried on b.
        statuses = [self.get_ca_cert(token) for _ in range(6)]
        self.assertEqual(statuses, [200] * 6)
        self.assertEqual(self.up(self.c, "passive"), 0)
        # Taken out for every worker at once: one refused connection in all.
        self.assertEqual(self.connect_failures("passive"), failures_before + 1)
        down = [e for e in self.proxy.log_events("upstream_down") if e.get("profile") == "passive"]
        self.assertEqual([e.get("reason") for e in down], ["connect_failed"])


if __name__ == "__main__":
    harness.main()
