#!/usr/bin/env python3
# Integration: an upstream that refuses connections gives 502, one that stalls gives 504, each in bounded time; the proxy keeps serving.
import socket
import threading
import time
import uuid

import harness
from harness import Profile, enroll, http_get, http_post_pki, proxy_config, wait_until

CHALLENGE = "failures-" + uuid.uuid4().hex[:12]
CONNECT_TIMEOUT = 1.0   # seconds, as written in the config below
STALL_TIMEOUT = 2.0
SLACK = 1.0             # the brief: answered within the configured timeout + 1 s


def blackhole_listener():
    """A loopback socket whose accept queue is full, so further SYNs are dropped (a connect that
    never completes), plus the sockets that fill it. Returns None if the kernel doesn't behave so."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.3)
        try:
            s.connect(listener.getsockname())
            fillers.append(s)
        except OSError:
            s.close()
            return listener, fillers
    for s in fillers:
        s.close()
    listener.close()
    return None


class UpstreamFailures(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        cls.stalling = cls.start_upstream()
        cls.stalling.set_stall(True)
        cls.blackhole = blackhole_listener()
        if cls.blackhole is not None:
            cls.addClassCleanup(lambda: [s.close() for s in cls.blackhole[1] + [cls.blackhole[0]]])
        blackhole_port = cls.blackhole[0].getsockname()[1] if cls.blackhole else harness.unused_tcp_port()
        challenge_file = cls.write_file("challenge", CHALLENGE)
        timeouts = dict(connect_timeout=f"{int(CONNECT_TIMEOUT * 1000)}ms", timeout=f"{int(STALL_TIMEOUT * 1000)}ms")
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.upstream.url, challenge_file=challenge_file),
            Profile("down", f"http://127.0.0.1:{harness.unused_tcp_port()}/scep", **timeouts),
            Profile("stall", cls.stalling.url, **timeouts),
            Profile("blackhole", f"http://127.0.0.1:{blackhole_port}/scep", **timeouts),
        ]))
        cls.good_token = cls.proxy.issue_token("demo", "device-good")["token"]
        # A real pkiMessage (from an allowed enrollment) so that PKIOperation requests
        # are well-formed and only the upstream can make them fail.
        issued = cls.proxy.issue_token("demo", "device-sample")
        sample = enroll(cls.workdir, cls.proxy.scep_url(issued["token"]), issued["challenge"], "device-sample")
        if sample.returncode != 0:
            raise RuntimeError("enrollment through the good profile failed:\n" + sample.output)
        cls.pki_message = [r.body for r in cls.upstream.requests() if r.operation == "PKIOperation"][-1]

    def send_all_operations(self, token):
        """GetCACert, GetCACaps and PKIOperation on `token`: [(operation, Response)]."""
        return [
            ("GetCACert", http_get(self.proxy.address, f"/scep/{token}?operation=GetCACert")),
            ("GetCACaps", http_get(self.proxy.address, f"/scep/{token}/pkiclient.exe?operation=GetCACaps")),
            ("PKIOperation", http_post_pki(self.proxy.address, f"/scep/{token}?operation=PKIOperation",
                                           self.pki_message)),
        ]

    def test_refused_connection_gives_502_quickly(self):
        token = self.proxy.issue_token("down", "device-down")["token"]
        for operation, response in self.send_all_operations(token):
            with self.subTest(operation=operation):
                self.assertEqual(response.status, 502, response.body)
                self.assertLess(response.elapsed, CONNECT_TIMEOUT + SLACK)
        self.assertProxyServes(self.proxy, self.good_token)

    def test_stalled_upstream_gives_504_after_timeout(self):
        token = self.proxy.issue_token("stall", "device-stall")["token"]
        seen_before = self.stalling.request_count()
        for operation, response in self.send_all_operations(token):
            with self.subTest(operation=operation):
                self.assertEqual(response.status, 504, response.body)
                # Not before the configured timeout (that would cut off a slow but working CA)...
                self.assertGreaterEqual(response.elapsed, STALL_TIMEOUT * 0.9)
                # ...and not much after it.
                self.assertLess(response.elapsed, STALL_TIMEOUT + SLACK)
        received = self.stalling.requests()[seen_before:]
        self.assertIn("GetCACert", [r.operation for r in received])
        # A PKIOperation whose bytes were sent is never re-sent: the challenge is single-use.
        self.assertEqual([r.operation for r in received].count("PKIOperation"), 1)
        self.assertProxyServes(self.proxy, self.good_token)

    def test_connect_that_never_completes_fails_after_connect_timeout(self):
        if self.blackhole is None:
            self.skipTest("could not build a loopback listener that drops SYNs")
        token = self.proxy.issue_token("blackhole", "device-blackhole")["token"]
        response = http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps")
        self.assertIn(response.status, (502, 504), response.body)
        self.assertGreaterEqual(response.elapsed, CONNECT_TIMEOUT * 0.9)
        self.assertLess(response.elapsed, CONNECT_TIMEOUT + SLACK)
        self.assertProxyServes(self.proxy, self.good_token)

    def test_failures_are_in_the_access_log(self):
        token = self.proxy.issue_token("down", "device-down-log")["token"]
        self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps").status, 502)
        entry = self.proxy.wait_for_request_log(token=harness.token_id(token))
        self.assertEqual(entry.get("status"), "502")
        self.assertEqual(entry.get("profile"), "down")
        self.assertEqual(entry.get("op"), "GetCACaps")

    def test_scepclient_fails_cleanly_when_upstream_is_down(self):
        issued = self.proxy.issue_token("down", "device-down-client")
        result = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], "device-down")
        self.assertNotEqual(result.returncode, 0, result.output)
        self.assertIsNone(result.certificate)
        self.assertProxyServes(self.proxy, self.good_token)



class StaleIfError(harness.IntegrationTestCase):
    """GetCACert/GetCACaps answers outlive their ca_cache_ttl for when the upstream is down."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        config = proxy_config(cls.workdir, [
            Profile("cached", cls.upstream.url, connect_timeout="1s", timeout="1s", lines=("ca_cache_ttl: 1s",)),
            Profile("uncached", cls.upstream.url, connect_timeout="1s", timeout="1s", lines=("ca_cache_ttl: 0s",)),
        ])
        # One worker: each worker has its own cache, and a connection's worker can't be chosen.
        cls.proxy = cls.start_proxy(config.replace("workers: 2\n", "workers: 1\n"))
        cls.cached = cls.proxy.issue_token("cached", "device-cached")["token"]
        cls.uncached = cls.proxy.issue_token("uncached", "device-uncached")["token"]

    def test_an_expired_answer_is_served_when_the_upstream_is_down(self):
        fresh = {op: http_get(self.proxy.address, f"/scep/{self.cached}?operation={op}")
                 for op in ("GetCACert", "GetCACaps")}
        for op, response in fresh.items():
            self.assertEqual(response.status, 200, (op, response.body))
        self.assertEqual(http_get(self.proxy.address, f"/scep/{self.uncached}?operation=GetCACert").status, 200)
        self.upstream.set_stall(True)  # answers nothing: each try ends in the 1 s timeout
        time.sleep(1.2)  # past ca_cache_ttl: the cache asks the upstream first
        for op, response in fresh.items():
            with self.subTest(op=op):
                stale = http_get(self.proxy.address, f"/scep/{self.cached}?operation={op}")
                self.assertEqual(stale.status, 200, stale.body)
                self.assertEqual(stale.body, response.body)
                self.proxy.wait_for_request_log(token=harness.token_id(self.cached), op=op, reason="cache_stale")
        self.assertIn("event=ca_cache_stale_served", self.proxy.output())
        # Without a cache there is nothing to fall back on.
        down = http_get(self.proxy.address, f"/scep/{self.uncached}?operation=GetCACert")
        self.assertEqual(down.status, 504, down.body)


class SingleFlight(harness.IntegrationTestCase):
    """Many devices asking for the CA certificate at once: one upstream fetch, every device answered."""

    DEVICES = 12

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ca = harness.CannedAnswer(200, "application/x-x509-ca-cert", b"\x30\x03\x02\x01\x01", delay=1.0)
        cls.upstream = cls.start_upstream(canned={"GetCACert": ca})
        config = proxy_config(cls.workdir, [Profile("slow", cls.upstream.url, lines=("ca_cache_ttl: 5m",))])
        # One worker: the cache and its single-flight are per worker.
        cls.proxy = cls.start_proxy(config.replace("workers: 2\n", "workers: 1\n"))
        cls.token = cls.proxy.issue_token("slow", "device-rollout")["token"]
        # The proxy's own background GetCACert (its certificate watcher) comes first: counted apart.
        wait_until(lambda: cls.proxy.log_events("upstream_certificates_unreadable"), 10,
                   "the certificate watcher's first GetCACert to end")
        cls.background_fetches = len([r for r in cls.upstream.requests() if r.operation == "GetCACert"])

    def test_concurrent_misses_share_one_upstream_fetch(self):
        answers = [None] * self.DEVICES

        def ask(i):
            answers[i] = http_get(self.proxy.address, f"/scep/{self.token}?operation=GetCACert")

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(self.DEVICES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        self.assertEqual([a.status for a in answers], [200] * self.DEVICES)
        self.assertEqual({a.body for a in answers}, {b"\x30\x03\x02\x01\x01"})
        fetches = [r for r in self.upstream.requests() if r.operation == "GetCACert"][self.background_fetches:]
        self.assertEqual(len(fetches), 1, [vars(r) for r in fetches])

if __name__ == "__main__":
    harness.main()
