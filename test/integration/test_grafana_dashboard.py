#!/usr/bin/env python3
# The Grafana dashboard and the Prometheus alert rules of packaging/ use only metrics (and labels) a running proxy exports.
"""A proxy with a metrics listener, a plain profile and a dynamic-challenge profile serves
some traffic (a forwarded GetCACaps, a rejected token, a PKIOperation encrypted to no upstream's
RA: unknown_recipient). Its upstream answers GetCACert with an NDES-style RA chain (RA signing,
RA encryption, CA: test/unit/pkcs7/data/getcacert-ra-chain.p7b), and the test waits until the
proxy's background GetCACert fetch has read it: the certificate metrics (expiry per role,
groups, fetches) only exist from then on. Then every PromQL expression of
packaging/grafana/*.json and packaging/prometheus/*.yml (not the promtool unit tests,
*.test.yml) is read with a small lexer:

- every metric it selects must have samples on /metrics (a histogram's _bucket, _sum and
  _count count as its samples);
- a label named in a selector's matchers must be on that metric's samples, and an `=`/`!=`
  value must be one of the values the proxy exports (so `outcome="unavaliable"` fails);
- any other bare name must be a PromQL function, aggregation or keyword: a metric of some
  other exporter (process_*, go_*) fails. `up` is allowed: Prometheus makes it per target.
"""

import glob
import json
import os
import re
import subprocess
import sys

import harness
from harness import CannedAnswer, IntegrationTestCase, Profile, http_get, http_post_pki, proxy_config, wait_until

PACKAGING_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "pkcs7", "data")
# The proxy fetches every upstream's GetCACert at start-up, then every ca_refresh_interval.
FIRST_FETCH_TIMEOUT = 15.0


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def rule_files():
    """packaging/prometheus's rules files: its *.yml but the promtool unit tests (*.test.yml)."""
    return [path for path in glob.glob(os.path.join(PACKAGING_DIR, "prometheus", "*.yml"))
            if not path.endswith(".test.yml")]

PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "count_over_time", "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "max_over_time",
    "min_over_time", "predict_linear", "quantile_over_time", "rate", "resets", "round", "scalar", "sort",
    "sort_desc", "sqrt", "stddev_over_time", "sum_over_time", "time", "timestamp", "vector",
    # Grafana's templating function.
    "label_values",
}
PROMQL_AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
                       "count_values", "group"}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset"}
# Made by Prometheus for every scrape target, not by the target.
PROMETHEUS_METRICS = {"up"}
# Labels Prometheus attaches to every scraped sample.
TARGET_LABELS = {"instance", "job"}

TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<variable>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
  | (?P<duration>\[[^\]]*\])
  | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<space>\s+)
  | (?P<other>==|!=|=~|!~|>=|<=|[-+*/%^(){},=<>])
""", re.VERBOSE)


def tokenize(expr):
    tokens, pos = [], 0
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        if not match:
            raise AssertionError(f"cannot read PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        pos = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def selectors(expr):
    """(metric names, [(metric, label, op, value)], other bare names) of one expression."""
    # Grafana's label_values(METRIC, LABEL): the label is no metric.
    tokens = tokenize(re.sub(r"label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$", r"label_values(\1)", expr))
    metrics, matchers = [], []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "name" and text in PROMQL_KEYWORDS and following == "(":
            # by (a, b) / on (x): label lists, not metrics.
            i = tokens.index(("other", ")"), i) + 1
            continue
        if kind == "name" and ((following == "(" and text in PROMQL_FUNCTIONS) or
                               (following in ("(", "by", "without") and text in PROMQL_AGGREGATIONS)):
            i += 1
            continue
        if kind == "name" and text in PROMQL_KEYWORDS:
            i += 1
            continue
        if kind == "name":
            metrics.append(text)
            i += 1
            if following == "{":
                i += 1
                while tokens[i][1] != "}":
                    label, op, value = tokens[i][1], tokens[i + 1][1], tokens[i + 2][1]
                    matchers.append((text, label, op, value[1:-1]))
                    i += 3
                    if tokens[i][1] == ",":
                        i += 1
                i += 1
            continue
        if kind == "other" and text == "{":
            raise AssertionError(f"a selector without a metric name in {expr!r}")
        i += 1
    others = [m for m in metrics if not m.startswith("scepproxy_")]
    return [m for m in metrics if m.startswith("scepproxy_")], matchers, others


def dashboard_expressions(node, where="dashboard"):
    """(where, expression) of every PromQL expression in a Grafana dashboard: panel targets,
    annotations and templating queries."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                found.append((where, value))
            elif key == "query" and isinstance(value, str) and "(" in value:
                found.append((where, value))
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                found.append((where, value["query"]))
            else:
                title = node.get("title") or node.get("name") or where
                found += dashboard_expressions(value, title if isinstance(title, str) else where)
    elif isinstance(node, list):
        for item in node:
            found += dashboard_expressions(item, where)
    return found


def rule_expressions(path):
    """(alert name, expression) of a Prometheus rules file whose expressions are on one line."""
    found, alert = [], None
    with open(path) as f:
        for line in f:
            if m := re.match(r"\s*- alert:\s*(\S+)", line):
                alert = m.group(1)
            elif m := re.match(r"\s*expr:\s*(.+?)\s*$", line):
                if m.group(1) in ("|", ">", "|-", ">-"):
                    raise AssertionError(f"{path}: keep {alert}'s expr on one line (the test reads it)")
                found.append((alert, m.group(1)))
    return found


def fetched_profiles(text):
    """Profiles with at least one successful background GetCACert fetch on a /metrics text."""
    done = set()
    for line in text.splitlines():
        m = re.match(r"scepproxy_upstream_certificate_fetches_total\{(.*)\} (\S+)$", line)
        if m and float(m.group(2)) > 0:
            labels = dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(1)))
            if labels.get("outcome") == "ok":
                done.add(labels.get("profile"))
    return done


def parse_exposition(text):
    """{sample name: [label dicts]} and {family: type} of a Prometheus text exposition."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#"):
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? \S+$", line)
            assert m, f"unreadable sample line {line!r}"
            labels = dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            samples.setdefault(m.group(1), []).append(labels)
    return samples, types


class DashboardUsesExportedMetrics(IntegrationTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upstream = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\n"),
            "GetCACert": CannedAnswer(200, "application/x-x509-ca-ra-cert", fixture("getcacert-ra-chain.p7b"))})
        # A second NDES of "plain" with a CA of its own: two certificate groups, so the proxy
        # routes the profile's PKIOperations by recipient.
        cls.other_upstream = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\n"),
            "GetCACert": CannedAnswer(200, "application/x-x509-ca-ra-cert", cls.self_signed_ca_p7())})
        password_file = cls.write_file("ndes.pass", "service-account-password\n")
        # A dynamic profile, so the challenge metrics exist; its NDES is never asked here.
        dynamic = ('{ type: dynamic, url: "http://127.0.0.1:9/certsrv/mscep_admin/", auth: basic, '
                   f'username: svc, password_file: {password_file} }}')
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("plain", [cls.upstream.url, cls.other_upstream.url], lines=("allow_mixed_ra: true",)),
            Profile("ndes", cls.upstream.url, challenge=dynamic),
        ], metrics=True))
        metrics = cls.proxy.listener_address("metrics")
        # The certificate metrics (and routing by recipient) wait for the first GetCACert answer.
        wait_until(lambda: fetched_profiles(http_get(metrics, "/metrics").body.decode()) >= {"plain", "ndes"},
                   FIRST_FETCH_TIMEOUT, "a successful background GetCACert fetch of both profiles")
        token = cls.proxy.issue_token("plain", "device-1")["token"]
        # Traffic: one forwarded request, one rejection.
        forwarded = http_get(cls.proxy.address, f"/scep/{token}?operation=GetCACaps")
        assert forwarded.status == 200, forwarded.body
        rejected = http_get(cls.proxy.address, "/scep/00000000-0000-4000-8000-000000000000?operation=GetCACaps")
        assert rejected.status == 403, rejected.body
        cls.proxy.wait_for_request_log(status=403)
        # scepclient's PKCSReq is encrypted to scepserver's CA; the first upstream has RA
        # certificates (only its RA encryption certificate decrypts), the second another CA: no
        # upstream has that recipient.
        other = cls.proxy.issue_token("plain", "device-2")["token"]
        misdirected = http_post_pki(cls.proxy.address, f"/scep/{other}?operation=PKIOperation", fixture("pkcsreq.der"))
        assert misdirected.status == 400, (misdirected.status, misdirected.body)
        cls.proxy.wait_for_request_log(reason="unknown_recipient")
        text = http_get(metrics, "/metrics").body.decode()
        cls.samples, cls.types = parse_exposition(text)

    @classmethod
    def self_signed_ca_p7(cls):
        """A certs-only PKCS#7 (DER) of a fresh self-signed CA, made with openssl."""
        key, cert, p7 = (os.path.join(cls.workdir, name) for name in ("other-ca.key", "other-ca.pem", "other-ca.p7b"))
        subprocess.run([harness.Tools.openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-subj", "/CN=other NDES CA", "-days", "30"], check=True, capture_output=True)
        subprocess.run([harness.Tools.openssl, "crl2pkcs7", "-nocrl", "-certfile", cert, "-outform", "DER",
                        "-out", p7], check=True, capture_output=True)
        with open(p7, "rb") as f:
            return f.read()

    def exported(self, name):
        """The label sets of a metric's samples; a histogram's are its _bucket series'."""
        if self.types.get(name) == "histogram":
            return [{key: value for key, value in labels.items() if key != "le"}
                    for labels in self.samples.get(name + "_bucket", [])]
        for suffix in ("_bucket", "_sum", "_count"):
            family = name[: -len(suffix)]
            if name.endswith(suffix) and self.types.get(family) == "histogram":
                return self.samples.get(name, [])
        return self.samples.get(name, [])

    def check_expressions(self, source, expressions):
        self.assertTrue(expressions, f"no expressions found in {source}")
        for where, expr in expressions:
            with self.subTest(source=source, where=where, expr=expr):
                metrics, matchers, others = selectors(expr)
                foreign = [name for name in others if name not in PROMETHEUS_METRICS]
                self.assertEqual(foreign, [], "names that are neither scepproxy metrics nor PromQL")
                for metric in metrics:
                    self.assertTrue(self.exported(metric), f"{metric} is not on the proxy's /metrics")
                for metric, label, op, value in matchers:
                    if metric in PROMETHEUS_METRICS or label in TARGET_LABELS:
                        continue
                    values = {labels.get(label) for labels in self.exported(metric)} - {None}
                    self.assertTrue(values, f"{metric} has no label {label!r}")
                    if op in ("=", "!="):
                        self.assertIn(value, values, f"{metric}{{{label}{op}\"{value}\"}}: no such value")

    def test_the_metrics_the_test_relies_on_are_there(self):
        # The lexer and exposition parser must see what they check, or every check would pass.
        for name in ("scepproxy_requests_total", "scepproxy_rejections_total", "scepproxy_challenge_fetch_total",
                     "scepproxy_upstream_duration_seconds", "scepproxy_build_info"):
            self.assertTrue(self.exported(name), name)
        # The upstream's three certificates were read, each with its role.
        self.assertEqual({labels.get("role") for labels in
                          self.exported("scepproxy_upstream_certificate_expiry_timestamp_seconds")},
                         {"ca", "ra_signing", "ra_encryption"})
        self.assertFalse(self.exported("scepproxy_no_such_metric"))
        self.assertEqual(selectors('sum by (le) (rate(x_total{a="b"}[5m])) / up')[0], [])
        self.assertEqual(selectors('sum by (le) (rate(x_total{a="b"}[5m])) / up')[2], ["x_total", "up"])
        self.assertEqual(selectors('rate(scepproxy_a{b=~"c|d",e!="f"}[$__rate_interval])')[1],
                         [("scepproxy_a", "b", "=~", "c|d"), ("scepproxy_a", "e", "!=", "f")])

    def test_certificate_counters_exist_before_anything_happens(self):
        # increase() can't see a counter's first increment when its series only appears with it: an
        # upstream's first certificate change would never alert. So the counter is there, at 0, from
        # the upstream's first fetch on.
        for profile, upstreams in (("plain", 2), ("ndes", 1)):
            with self.subTest(profile=profile):
                changes = [labels for labels in self.exported("scepproxy_upstream_certificate_changes_total")
                           if labels.get("profile") == profile]
                self.assertEqual(len(changes), upstreams, "one series per upstream")
                for labels in changes:
                    self.assertEqual(self.proxy.metric("scepproxy_upstream_certificate_changes_total", **labels), 0)

    def test_dashboards_use_only_exported_metrics(self):
        paths = glob.glob(os.path.join(PACKAGING_DIR, "grafana", "*.json"))
        self.assertTrue(paths, "no dashboard in packaging/grafana")
        for path in paths:
            with open(path) as f:
                dashboard = json.load(f)
            self.check_expressions(path, dashboard_expressions(dashboard))

    def test_dashboard_covers_the_operators_questions(self):
        # Request rate/status, rejections, PKI statuses, upstream latency/errors, store, challenge,
        # connections, reloads, build info: each has a panel.
        with open(os.path.join(PACKAGING_DIR, "grafana", "scepproxy-dashboard.json")) as f:
            used = set()
            for _, expr in dashboard_expressions(json.load(f)):
                used.update(selectors(expr)[0])
        for metric in ("scepproxy_requests_total", "scepproxy_rejections_total", "scepproxy_pki_status_total",
                       "scepproxy_upstream_duration_seconds_bucket", "scepproxy_upstream_requests_total",
                       "scepproxy_upstream_up", "scepproxy_store_operations_total", "scepproxy_challenge_fetch_total",
                       "scepproxy_connections", "scepproxy_config_reloads_total", "scepproxy_build_info",
                       "scepproxy_upstream_certificate_expiry_timestamp_seconds",
                       "scepproxy_upstream_certificate_groups", "scepproxy_upstream_certificate_mixed_allowed",
                       "scepproxy_upstream_certificate_changes_total", "scepproxy_upstream_certificate_fetches_total"):
            self.assertIn(metric, used)

    def test_alert_rules_use_only_exported_metrics(self):
        paths = rule_files()
        self.assertTrue(paths, "no rules in packaging/prometheus")
        for path in paths:
            self.check_expressions(path, rule_expressions(path))


if __name__ == "__main__":
    harness.main()
