#!/usr/bin/env python3
# Integration: /metrics is strict Prometheus text (0.0.4), names every DESIGN.md metric, and its counters move with real traffic.
import signal
import unittest
import uuid

import harness
import prometheus_text
from harness import enroll, http_get, parse_logfmt, proxy_config, wait_until
from prometheus_text import FormatError, parse

CHALLENGE = "metrics-" + uuid.uuid4().hex[:12]

# DESIGN.md's list, with the labels each must carry.
DESIGN_METRICS = {
    "scepproxy_requests_total": {"operation", "code"},
    "scepproxy_request_duration_seconds": {"operation"},
    "scepproxy_upstream_requests_total": {"profile", "outcome"},
    "scepproxy_upstream_duration_seconds": {"profile"},
    "scepproxy_upstream_up": {"profile", "upstream"},
    "scepproxy_rejections_total": {"reason"},
    "scepproxy_pki_status_total": {"profile", "message_type", "status"},
    "scepproxy_ca_cache_total": {"result"},
    "scepproxy_store_operations_total": {"backend", "op", "outcome"},
    "scepproxy_connections": {"listener"},
    "scepproxy_config_reloads_total": {"result"},
    "scepproxy_build_info": {"version"},
}


class StrictParser(unittest.TestCase):
    """The parser refuses what the format doesn't allow (else a pass above would mean nothing)."""

    VALID = ("# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\"} 3\n"
             "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n")

    def test_valid_text_parses(self):
        families = parse(self.VALID)
        self.assertEqual(families["x_total"].value(a='q"\\\n'), 3)
        self.assertEqual(families["h"].value("h_count"), 2)

    def test_malformed_texts_are_refused(self):
        bad = {
            "no final newline": "a 1",
            "bad metric name": "1a 1\n",
            "bad label name": "a{1x=\"v\"} 1\n",
            "unquoted label value": "a{x=v} 1\n",
            "bad escape": "a{x=\"\\t\"} 1\n",
            "unterminated label value": "a{x=\"v} 1\n",
            "bad value": "a 1.2.3\n",
            "two spaces": "a  1\n",
            "bad timestamp": "a 1 1.5\n",
            "unknown TYPE": "# TYPE a countr\na 1\n",
            "TYPE after samples": "a 1\n# TYPE a counter\n",
            "two TYPE lines": "# TYPE a counter\n# TYPE a counter\na 1\n",
            "two HELP lines": "# HELP a x\n# HELP a y\na 1\n",
            "duplicate series": "a{x=\"1\"} 1\na{x=\"1\"} 2\n",
            "split family": "a 1\nb 1\na{x=\"2\"} 1\n",
            "negative counter": "# TYPE a counter\na -1\n",
            "histogram sample without a suffix": "# TYPE h histogram\nh 1\n",
            "histogram without +Inf": "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
            "histogram buckets going down": "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
                                            "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
            "histogram count off": "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
            "histogram without le": "# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n",
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(FormatError):
                    parse(text)


class MetricsMove(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.config = proxy_config(cls.workdir, [harness.Profile("demo", cls.scepserver.url,
                                                                challenge_file=challenge_file)], metrics=True)
        cls.proxy = cls.start_proxy(cls.config)
        cls.metrics_address = cls.proxy.listener_address("metrics")

    def scrape(self):
        return prometheus_text.scrape(self.metrics_address)

    def test_every_design_metric_is_there_with_its_labels(self):
        token = self.proxy.issue_token("demo", "device-labels")["token"]
        self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps").status, 200)
        http_get(self.proxy.address, f"/scep/{uuid.uuid4()}?operation=GetCACaps")
        families = self.scrape()
        for name, labels in DESIGN_METRICS.items():
            with self.subTest(name):
                self.assertIn(name, families)
                family = families[name]
                self.assertTrue(family.help, f"{name} has no HELP")
                samples = [s for s in family.samples if s.name in (name, name + "_count")]
                self.assertTrue(samples, f"{name} has no series")
                for sample in samples:
                    self.assertEqual(set(sample.labels) - {"le"}, labels)
        self.assertEqual(families["scepproxy_request_duration_seconds"].type, "histogram")
        self.assertEqual(families["scepproxy_requests_total"].type, "counter")
        self.assertEqual(families["scepproxy_upstream_up"].type, "gauge")
        self.assertEqual(len(families["scepproxy_build_info"].samples), 1)

    def test_invariant_violations_are_exposed_and_none_happened(self):
        # base/ keeps the count; the exposition reads it. Traffic through every path of this class
        # must leave it at 0: a violation is a bug (a debug or sanitizer build would have aborted).
        token = self.proxy.issue_token("demo", "device-invariants")["token"]
        self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACert").status, 200)
        family = self.scrape()["scepproxy_invariant_violations_total"]
        self.assertEqual(family.type, "counter")
        self.assertTrue(family.help)
        self.assertEqual(family.value(), 0)
        self.assertNotIn("invariant_violated", self.proxy.output())

    def test_counters_move_with_requests_rejections_enrollments_and_reloads(self):
        before = self.scrape()
        token = self.proxy.issue_token("demo", "device-metrics")["token"]
        for _ in range(3):
            self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps").status, 200)
        unknown = http_get(self.proxy.address, f"/scep/{uuid.uuid4()}?operation=GetCACaps")
        self.assertEqual(unknown.status, 403)
        issued = self.proxy.issue_token("demo", "device-metrics-enroll")
        result = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], "device-metrics-enroll")
        self.assertEqual(result.returncode, 0, result.output)
        self.reload()
        with open(self.proxy.config_path, "a") as f:
            f.write("not_a_key: 1\n")
        try:
            self.reload()
        finally:
            with open(self.proxy.config_path, "w") as f:
                f.write(self.config)
        # The access log line and the counters are written after the answer: wait for the last one.
        self.proxy.wait_for_request_log(op="PKIOperation", status=200)
        after = self.scrape()

        def moved(name, *sample, **labels):
            """How much the matching series grew; a family with no series yet counts 0."""
            def total(families):
                return families[name].total(*sample, **labels) if name in families else 0
            return total(after) - total(before)
        self.assertGreaterEqual(moved("scepproxy_requests_total", operation="GetCACaps", code="200"), 3)
        self.assertEqual(moved("scepproxy_requests_total", operation="GetCACaps", code="403"), 1)
        self.assertEqual(moved("scepproxy_rejections_total", reason="token_unknown"), 1)
        self.assertEqual(moved("scepproxy_pki_status_total", profile="demo", message_type="PKCSReq",
                               status="SUCCESS"), 1)
        self.assertGreaterEqual(moved("scepproxy_requests_total", operation="PKIOperation", code="200"), 1)
        self.assertGreaterEqual(moved("scepproxy_upstream_requests_total", profile="demo", outcome="ok"), 2)
        self.assertGreaterEqual(moved("scepproxy_request_duration_seconds", "scepproxy_request_duration_seconds_count",
                                      operation="GetCACaps"), 4)
        self.assertEqual(moved("scepproxy_config_reloads_total", result="success"), 1)
        self.assertEqual(moved("scepproxy_config_reloads_total", result="failure"), 1)
        self.assertEqual(after["scepproxy_upstream_up"].value(profile="demo",
                                                             upstream=f"127.0.0.1:{self.scepserver.port}"), 1)

    def reload(self):
        events = ("config_reloaded", "config_reload_rejected")

        def count():
            return sum(1 for line in self.proxy.output().splitlines() if parse_logfmt(line).get("event") in events)
        before = count()
        self.proxy.process.send_signal(signal.SIGHUP)
        wait_until(lambda: count() > before, 20, "the reload's outcome in the log")


if __name__ == "__main__":
    harness.main()
