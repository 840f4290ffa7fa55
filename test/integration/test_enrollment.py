#!/usr/bin/env python3
# Integration: scepclient enrolls through the proxy to a real scepserver; CA answers pass through unchanged; compliance gates PKIOperation.
import uuid

import harness
from harness import Profile, enroll, http_get, proxy_config

CHALLENGE = "integration-" + uuid.uuid4().hex[:12]


class EnrollmentThroughProxy(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        # The recording upstream sits between the proxy and scepserver so tests can see
        # which requests reached the CA side.
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        # A trailing newline, as `echo secret > file` writes it: it is not part of the password.
        challenge_file = cls.write_file("challenge", CHALLENGE + "\n")
        # No store cache: device state changes made with the CLI must apply at once here
        # (test_token_rejection covers the default cache).
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.upstream.url, challenge_file=challenge_file)], store_cache_ttl="0s"))

    def enroll_device(self, device):
        """Issues a token for `device` and runs scepclient with it; returns (token JSON, Enrollment)."""
        issued = self.proxy.issue_token("demo", device)
        result = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], device)
        return issued, result

    def test_token_issue_answers_url_and_static_challenge(self):
        issued = self.proxy.issue_token("demo", "device-json")
        self.assertEqual(set(issued), {"token", "scep_url", "challenge", "expires_at"})
        self.assertEqual(str(uuid.UUID(issued["token"])), issued["token"].lower())
        self.assertEqual(issued["scep_url"], "http://127.0.0.1:8080/scep/" + issued["token"])
        self.assertEqual(issued["challenge"], CHALLENGE)

    def test_scepclient_enrolls_with_valid_token(self):
        issued, result = self.enroll_device("device-ok")
        self.assertEqual(result.returncode, 0, result.output)
        self.assertIsNotNone(result.certificate, result.output)
        self.assertEqual(harness.certificate_subject(result.certificate)["CN"], "device-ok")
        self.assertTrue(harness.certificate_verifies(self.scepserver.ca_pem, result.certificate),
                        "the certificate was not issued by the test CA")
        operations = [r.operation for r in self.upstream.requests()]
        self.assertIn("PKIOperation", operations)

    def test_scepclient_enrolls_with_pkiclient_exe_suffix(self):
        issued = self.proxy.issue_token("demo", "device-suffix")
        result = enroll(self.workdir, self.proxy.scep_url(issued["token"], "/pkiclient.exe"),
                        issued["challenge"], "device-suffix")
        self.assertEqual(result.returncode, 0, result.output)
        self.assertEqual(harness.certificate_subject(result.certificate)["CN"], "device-suffix")

    def test_ca_answers_are_byte_identical_to_scepserver(self):
        token = self.proxy.issue_token("demo", "device-bytes")["token"]
        for operation in ("GetCACert", "GetCACaps"):
            for suffix in ("", "/pkiclient.exe"):
                with self.subTest(operation=operation, suffix=suffix):
                    direct = http_get(self.scepserver.address, f"/scep?operation={operation}")
                    proxied = http_get(self.proxy.address, f"/scep/{token}{suffix}?operation={operation}")
                    self.assertEqual(direct.status, 200)
                    self.assertEqual(proxied.status, 200, proxied.body)
                    self.assertEqual(proxied.body, direct.body)
                    self.assertEqual(proxied.content_type, direct.content_type)

    def test_non_compliant_device_is_refused_pkioperation_only(self):
        issued = self.proxy.issue_token("demo", "device-compliance")
        token = issued["token"]
        self.proxy.set_device("device-compliance", compliant=False)

        # The CA certificate is public: a non-compliant device may still fetch it.
        self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACert").status, 200)
        seen_before = self.upstream.request_count()
        blocked = enroll(self.workdir, self.proxy.scep_url(token), issued["challenge"], "device-compliance")
        self.assertNotEqual(blocked.returncode, 0, blocked.output)
        self.assertIsNone(blocked.certificate)
        self.assertNotIn("PKIOperation", [r.operation for r in self.upstream.requests()[seen_before:]],
                         "the refused PKIOperation reached the upstream")
        self.proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation", status=403,
                                        reason="device_not_compliant")

        # Compliant again: the same (unused) token enrolls.
        self.proxy.set_device("device-compliance", compliant=True)
        again = enroll(self.workdir, self.proxy.scep_url(token), issued["challenge"], "device-compliance")
        self.assertEqual(again.returncode, 0, again.output)
        self.assertEqual(harness.certificate_subject(again.certificate)["CN"], "device-compliance")

    def test_not_enrolled_device_is_refused_pkioperation(self):
        issued = self.proxy.issue_token("demo", "device-unenrolled")
        self.proxy.set_device("device-unenrolled", enrolled=False)
        seen_before = self.upstream.request_count()
        blocked = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], "device-unenrolled")
        self.assertNotEqual(blocked.returncode, 0, blocked.output)
        self.assertNotIn("PKIOperation", [r.operation for r in self.upstream.requests()[seen_before:]])
        # GetCACert, scepclient's first step, was answered (maybe from the proxy's CA cache).
        self.proxy.wait_for_request_log(token=harness.token_id(issued["token"]), op="GetCACert", status=200)
        self.proxy.wait_for_request_log(token=harness.token_id(issued["token"]), op="PKIOperation", status=403,
                                        reason="device_not_enrolled")

        self.proxy.set_device("device-unenrolled", enrolled=True)
        again = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], "device-unenrolled")
        self.assertEqual(again.returncode, 0, again.output)

    def test_pkioperation_reaches_upstream_as_post_with_content_length(self):
        # NDES/IIS refuse chunked bodies; the recording upstream answers 411 to them.
        issued, result = self.enroll_device("device-framing")
        self.assertEqual(result.returncode, 0, result.output)
        posts = [r for r in self.upstream.requests() if r.operation == "PKIOperation"]
        self.assertTrue(posts)
        for request in posts:
            self.assertEqual(request.method, "POST")
            self.assertNotIn("transfer-encoding", request.headers)
            self.assertEqual(int(request.headers["content-length"]), request.body_length)
            self.assertGreater(request.body_length, 0)


if __name__ == "__main__":
    harness.main()
