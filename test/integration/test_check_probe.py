#!/usr/bin/env python3
# Integration: `scepproxy check --probe` asks every upstream for GetCACaps and GetCACert: status, capabilities, certificates as openssl reads them, certificate groups, exit codes.
import calendar
import re
import subprocess
import time
import uuid

import harness
from harness import Profile, proxy_config, unused_tcp_port

CHALLENGE = "probe-" + uuid.uuid4().hex[:12]
TIMEOUT = 5.0  # each profile's `timeout`: the probe's bound per fetch
CERTIFICATE_LINE = re.compile(r"^certificate (?P<role>\S+): subject (?P<subject>.*); notAfter (?P<not_after>\S+); "
                              r"SHA-256 (?P<fingerprint>[0-9A-F:]+)$")


def rfc3339_seconds(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class CheckProbe(harness.IntegrationTestCase):
    """scepservers a and b serve one CA depot (one certificate group); c has its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.start_scepserver(CHALLENGE, name="a")
        cls.b = cls.start_scepserver(CHALLENGE, name="b", depot=cls.a.depot)
        cls.c = cls.start_scepserver(CHALLENGE, name="c", ca_options=["-organization", "probe-ca-2"])
        cls.challenge_file = cls.write_file("challenge", CHALLENGE + "\n")

    @staticmethod
    def label(server):
        return f"127.0.0.1:{server.port}"

    def probe(self, name, upstream_urls, lines=()):
        """check --probe on a config with one profile NAME; (result, seconds it took)."""
        path = self.write_file(name + ".yaml", proxy_config(self.workdir, [
            Profile(name, upstream_urls, connect_timeout="2s", timeout=f"{int(TIMEOUT)}s",
                    challenge_file=self.challenge_file, lines=tuple(lines))]))
        started = time.monotonic()
        result = subprocess.run([harness.Tools.scepproxy, "check", "-c", path, "--probe"],
                                capture_output=True, text=True, timeout=harness.CLI_TIMEOUT)
        return result, time.monotonic() - started

    @staticmethod
    def upstream_lines(result, profile, label):
        """What the report says of one upstream, without the "profile P: upstream L: " prefix."""
        prefix = f"profile {profile}: upstream {label}: "
        return [line[len(prefix):] for line in result.stdout.splitlines() if line.startswith(prefix)]

    def openssl_view(self, pem):
        """(subject in RFC 2253 form, notAfter as Unix seconds, SHA-256 fingerprint) as openssl prints them."""
        shown = subprocess.run([harness.Tools.openssl, "x509", "-enddate", "-subject", "-nameopt", "RFC2253",
                                "-noout", "-in", pem], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        not_after = calendar.timegm(time.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y GMT"))
        fingerprint = subprocess.run([harness.Tools.openssl, "x509", "-fingerprint", "-sha256", "-noout", "-in", pem],
                                     capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
        return fields["subject"].strip(), not_after, fingerprint

    def assertUpstreamOk(self, result, profile, server, group):
        """The upstream answered both with 200; its one certificate is the CA of its depot, as openssl reads it."""
        lines = self.upstream_lines(result, profile, self.label(server))
        report = result.stdout
        self.assertIn(f"{server.url}: ok, group {group}", lines, report)
        caps = [line for line in lines if line.startswith("GetCACaps: ")]
        self.assertEqual(len(caps), 1, report)
        self.assertTrue(caps[0].startswith("GetCACaps: HTTP 200: "), report)
        self.assertIn("POSTPKIOperation", caps[0].split(": ", 2)[2].split(","), report)
        self.assertTrue(any(line.startswith("GetCACert: HTTP 200: 1 certificate ") for line in lines), report)
        certificates = [CERTIFICATE_LINE.match(line) for line in lines if line.startswith("certificate ")]
        self.assertEqual(len(certificates), 1, report)
        self.assertIsNotNone(certificates[0], report)
        subject, not_after, fingerprint = self.openssl_view(server.ca_pem)
        self.assertEqual(certificates[0]["role"], "ca", report)
        self.assertEqual(certificates[0]["subject"], subject, report)
        self.assertEqual(rfc3339_seconds(certificates[0]["not_after"]), not_after, report)
        self.assertEqual(certificates[0]["fingerprint"], fingerprint, report)
        return certificates[0]

    def test_upstreams_of_one_ca_are_one_group(self):
        result, _ = self.probe("shared", [self.a.url, self.b.url])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        first = self.assertUpstreamOk(result, "shared", self.a, 1)
        second = self.assertUpstreamOk(result, "shared", self.b, 1)
        self.assertEqual(first["fingerprint"], second["fingerprint"])
        self.assertIn(f"profile shared: upstreams: 1 certificate group ({self.label(self.a)}=1 {self.label(self.b)}=1)",
                      result.stdout.splitlines())
        self.assertTrue(result.stdout.rstrip().endswith(": ok"), result.stdout)
        self.assertNotIn("not probed", result.stdout)

    def test_upstreams_of_two_cas_disagree(self):
        result, _ = self.probe("mixed", [self.a.url, self.c.url])
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertUpstreamOk(result, "mixed", self.a, 1)
        self.assertUpstreamOk(result, "mixed", self.c, 2)
        self.assertIn(f"profile mixed: upstreams disagree: 2 certificate groups ({self.label(self.a)}=1 "
                      f"{self.label(self.c)}=2); set allow_mixed_ra: true if intended", result.stdout.splitlines())
        self.assertIn("probe failed", result.stderr)
        self.assertFalse(result.stdout.rstrip().endswith(": ok"), result.stdout)

    def test_allow_mixed_ra_accepts_two_groups(self):
        result, _ = self.probe("mixed_allowed", [self.a.url, self.c.url], lines=["allow_mixed_ra: true"])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertUpstreamOk(result, "mixed_allowed", self.a, 1)
        self.assertUpstreamOk(result, "mixed_allowed", self.c, 2)
        self.assertIn(f"profile mixed_allowed: upstreams: 2 certificate groups ({self.label(self.a)}=1 "
                      f"{self.label(self.c)}=2), allowed by allow_mixed_ra: true", result.stdout.splitlines())
        self.assertNotIn("disagree", result.stdout)

    def test_refused_connection_fails_naming_the_upstream(self):
        port = unused_tcp_port()
        refused_url = f"http://127.0.0.1:{port}/scep"
        result, seconds = self.probe("refused", [self.a.url, refused_url])
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertLess(seconds, TIMEOUT + 5, "a refused connection is not waited out")
        self.assertUpstreamOk(result, "refused", self.a, 1)
        lines = self.upstream_lines(result, "refused", f"127.0.0.1:{port}")
        self.assertIn(f"{refused_url}: failed", lines, result.stdout)
        self.assertIn("GetCACaps: no answer: upstream_connect_failed", lines, result.stdout)
        self.assertIn("GetCACert: no answer: upstream_connect_failed", lines, result.stdout)
        self.assertFalse(any(line.startswith("certificate ") for line in lines), result.stdout)
        self.assertIn("profile refused: upstreams: 1 of 2 failed", result.stdout.splitlines())
        self.assertIn("probe failed", result.stderr)


if __name__ == "__main__":
    harness.main()
