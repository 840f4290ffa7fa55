#!/usr/bin/env python3
# Integration: SIGTERM/SIGINT drain under load — requests in flight answered (Connection: close), idle ones closed, exit within shutdown_timeout.
import http.client
import signal
import sys
import time

import harness
from harness import CannedAnswer, proxy_config, wait_until
from load_clients import LoadClients

CLIENTS = 6


def drain_config(workdir, upstream_url, shutdown_timeout):
    text = proxy_config(workdir, [harness.Profile("demo", upstream_url, timeout="60s")],
                        limits={"shutdown_timeout": shutdown_timeout})
    return text.replace("    timeout: 60s\n", "    timeout: 60s\n    ca_cache_ttl: 0s\n")


class Drain(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upstream = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\nAES\n"),
            "GetCACert": CannedAnswer(200, "application/x-x509-ca-cert", b"\x30\x03\x02\x01\x00")})

    def setUp(self):
        self.addCleanup(self.upstream.set_hold, False)

    def start(self, name, shutdown_timeout):
        proxy = self.start_proxy(drain_config(self.workdir, self.upstream.url, shutdown_timeout), name=name)
        token = proxy.issue_token("demo", f"device-{name}")["token"]
        return proxy, [f"/scep/{token}?operation=GetCACaps", f"/scep/{token}?operation=GetCACert"]

    def test_sigterm_under_load_answers_every_request_in_flight_and_exits_in_time(self):
        proxy, targets = self.start("drained", "20s")
        load = LoadClients(proxy.address, targets, clients=CLIENTS, seconds=40).start()
        try:
            wait_until(lambda: load.tally.ok >= 50, 20, "load answered")
            idle = http.client.HTTPConnection(*proxy.address, timeout=10)
            idle.request("GET", targets[0])
            self.assertEqual(idle.getresponse().read()[:4], b"POST")
            # The upstream turns slow: each client ends up with one request in flight.
            self.upstream.set_hold(True)
            wait_until(lambda: self.upstream.held_count() == CLIENTS, 20, "every client's request in flight")
            answered_before = load.tally.ok
            load.allow_refusals()
            stop_at = time.monotonic()
            proxy.process.send_signal(signal.SIGTERM)

            # Idle keep-alive connections are closed at once; nothing new is accepted.
            idle.sock.settimeout(10)
            self.assertEqual(idle.sock.recv(1), b"", "an idle keep-alive connection stayed open")
            idle.close()
            wait_until(lambda: not harness.tcp_port_accepts(*proxy.address), 10, "the listener to close")
            self.assertTrue(proxy.alive(), "the proxy exited with requests in flight")
            self.assertEqual(load.tally.ok, answered_before)

            self.upstream.set_hold(False)
            exit_code = proxy.process.wait(30)
            elapsed = time.monotonic() - stop_at
        finally:
            tally = load.stop()
        print(f"load: {tally.ok} answered, {tally.failed} failed, {tally.retried} retried, "
              f"{tally.closed_by_server} Connection: close, drain {elapsed:.2f}s", file=sys.stderr)
        self.assertEqual(exit_code, 0)
        self.assertLess(elapsed, 20)
        self.assertEqual(tally.failed, 0, tally.failures)
        self.assertEqual(tally.retried, 0)
        # Every request that was in flight got its whole answer, marked as the connection's last.
        self.assertEqual(tally.ok, answered_before + CLIENTS)
        self.assertEqual(tally.closed_by_server, CLIENTS)
        self.assertIn("event=stopped", proxy.output())

    def test_shutdown_timeout_bounds_the_wait_for_requests_in_flight(self):
        proxy, targets = self.start("bounded", "2s")
        self.upstream.set_hold(True)
        load = LoadClients(proxy.address, targets, clients=2, seconds=40).start()
        try:
            wait_until(lambda: self.upstream.held_count() == 2, 20, "two requests in flight")
            load.allow_refusals()
            stop_at = time.monotonic()
            proxy.process.send_signal(signal.SIGINT)
            exit_code = proxy.process.wait(20)
            elapsed = time.monotonic() - stop_at
        finally:
            self.upstream.set_hold(False)
            tally = load.stop()
        self.assertEqual(exit_code, 0)
        # It waited for them, but not past shutdown_timeout (plus scheduling slack on a busy machine).
        self.assertGreaterEqual(elapsed, 1.9)
        self.assertLess(elapsed, 2 + 8)
        self.assertIn("event=shutdown_timeout", proxy.output())
        self.assertEqual(tally.ok, 0)


if __name__ == "__main__":
    harness.main()
