#!/usr/bin/env python3
# Integration: the webhook store against a fake MDM: allowed devices enroll, refusals (and 4xx answers) are 403 with the reason logged, timeouts and 5xx follow on_error.
import hashlib
import os
import time
import uuid

import harness
from fake_mdm_webhook import FakeMdmWebhook
from harness import CannedAnswer, Profile, enroll, http_get, http_post_pki, proxy_config

CHALLENGE = "webhook-" + uuid.uuid4().hex[:12]
PKCS7_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "pkcs7", "data")
BEARER = "mdm-bearer-" + uuid.uuid4().hex
WEBHOOK_TIMEOUT = 1.0   # seconds: store.webhook.timeout of these proxies


def read_capture(name):
    with open(os.path.join(PKCS7_DATA, name), "rb") as f:
        return f.read()


class WebhookStore(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mdm = FakeMdmWebhook(bearer_token=BEARER).start()
        cls.addClassCleanup(cls.mdm.stop)
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        # PKIOperations on this profile get a canned CertRep FAILURE: a token can be asked about again and again.
        cls.canned = cls.start_upstream(canned={
            "GetCACaps": CannedAnswer(200, "text/plain", b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n"),
            "PKIOperation": CannedAnswer(200, "application/x-pki-message", read_capture("certrep-failure.der")),
        })
        challenge_file = cls.write_file("challenge", CHALLENGE)
        bearer_file = cls.write_file("webhook.token", BEARER + "\n")
        profiles = [Profile("demo", cls.upstream.url, challenge_file=challenge_file),
                    Profile("canned", cls.canned.url)]

        def store(name, on_error):
            # No cache: every PKIOperation asks the webhook, so each test sees its own answers.
            return ["backend: webhook",
                    f"sqlite: {{ path: {os.path.join(cls.workdir, name + '.db')} }}",
                    f'webhook: {{ url: "{cls.mdm.url}", bearer_token_file: {bearer_file}, '
                    f"timeout: {int(WEBHOOK_TIMEOUT * 1000)}ms }}",
                    "cache_ttl: 0s",
                    f"on_error: {on_error}"]
        cls.deny_proxy = cls.start_proxy(proxy_config(cls.workdir, profiles, store=store("deny", "deny")),
                                         name="proxy-deny")
        cls.allow_proxy = cls.start_proxy(proxy_config(cls.workdir, profiles, store=store("allow", "allow")),
                                          name="proxy-allow")
        cls.pki_request = read_capture("pkcsreq.der")

    def setUp(self):
        self.mdm.configure()   # every device allowed, answered at once

    def log_events(self, proxy, event):
        lines = harness.read_text(proxy.stdout_path).splitlines()
        return [fields for fields in map(harness.parse_logfmt, lines) if fields.get("event") == event]

    def pki_operation(self, proxy, token):
        started = time.monotonic()
        response = http_post_pki(proxy.address, f"/scep/{token}?operation=PKIOperation", self.pki_request)
        return response, time.monotonic() - started

    def test_an_allowed_device_enrolls_and_the_mdm_is_told_what_it_needs(self):
        issued = self.deny_proxy.issue_token("demo", "device-allowed")
        result = enroll(self.workdir, self.deny_proxy.scep_url(issued["token"]), issued["challenge"], "device-allowed")
        self.assertEqual(result.returncode, 0, result.output)
        self.assertTrue(harness.certificate_verifies(self.scepserver.ca_pem, result.certificate))

        token_hash = hashlib.sha256(uuid.UUID(issued["token"]).bytes).hexdigest()
        asked = [r for r in self.mdm.requests() if isinstance(r["body"], dict)
                 and r["body"].get("token_sha256") == token_hash]
        self.assertTrue(asked, self.mdm.requests())
        body = asked[0]["body"]
        self.assertEqual(set(body), {"token_sha256", "device_id", "profile", "operation", "message_type",
                                     "transaction_id"})
        self.assertEqual((body["device_id"], body["profile"], body["operation"]),
                         ("device-allowed", "demo", "PKIOperation"))
        self.assertEqual(asked[0]["headers"].get("authorization"), f"Bearer {BEARER}")
        self.assertNotIn(issued["token"], str(self.mdm.requests()), "the token itself reached the MDM")

    def test_the_mdm_is_not_asked_about_get_ca_caps(self):
        token = self.deny_proxy.issue_token("canned", "device-caps")["token"]
        before = len(self.mdm.requests())
        self.assertEqual(http_get(self.deny_proxy.address, f"/scep/{token}?operation=GetCACaps").status, 200)
        self.assertEqual(len(self.mdm.requests()), before)

    def test_a_refusal_is_403_with_the_mdms_reason_in_the_log(self):
        reason = "device reported lost " + uuid.uuid4().hex[:6]
        self.mdm.configure(devices={"device-refused": {"allow": False, "reason": reason}})
        token = self.deny_proxy.issue_token("canned", "device-refused")["token"]
        upstream_before = self.canned.request_count()
        response, _ = self.pki_operation(self.deny_proxy, token)
        self.assertEqual((response.status, response.body.rstrip(b"\n")), (403, b"device_not_compliant"))
        self.assertNotIn(reason.encode(), response.body, "the MDM's reason is for the log, not the device")
        self.assertEqual(
            [r for r in self.canned.requests()[upstream_before:] if r.operation == "PKIOperation"], [])
        harness.wait_until(lambda: self.log_events(self.deny_proxy, "store_webhook_denied"), 5, "the denial's log line")
        denied = [e for e in self.log_events(self.deny_proxy, "store_webhook_denied")
                  if e.get("token") == harness.token_id(token)]
        self.assertEqual(len(denied), 1, self.log_events(self.deny_proxy, "store_webhook_denied"))
        self.assertEqual(denied[0].get("detail"), reason)
        entry = self.deny_proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation")
        self.assertEqual((entry.get("status"), entry.get("reason")), ("403", "device_not_compliant"))

    def test_a_webhook_that_times_out_means_503_when_on_error_is_deny(self):
        token = self.deny_proxy.issue_token("canned", "device-slow-deny")["token"]
        self.mdm.configure(delay=WEBHOOK_TIMEOUT + 3)
        response, elapsed = self.pki_operation(self.deny_proxy, token)
        self.assertEqual((response.status, response.body.rstrip(b"\n")), (503, b"store_unavailable"))
        self.assertLess(elapsed, WEBHOOK_TIMEOUT + 2.0)
        self.assertTrue(self.deny_proxy.alive())
        self.assertTrue([e for e in self.log_events(self.deny_proxy, "store_unavailable")
                         if "in time" in e.get("detail", "")])

    def test_a_webhook_that_times_out_lets_a_valid_token_through_when_on_error_is_allow(self):
        token = self.allow_proxy.issue_token("canned", "device-slow-allow")["token"]
        self.mdm.configure(delay=WEBHOOK_TIMEOUT + 3)
        upstream_before = self.canned.request_count()
        response, elapsed = self.pki_operation(self.allow_proxy, token)
        self.assertEqual(response.status, 200, response.body)
        self.assertLess(elapsed, WEBHOOK_TIMEOUT + 2.0)
        self.assertEqual(len([r for r in self.canned.requests()[upstream_before:] if r.operation == "PKIOperation"]), 1)
        harness.wait_until(lambda: [e for e in self.log_events(self.allow_proxy, "store_unavailable_allowed")
                                    if e.get("token") == harness.token_id(token)], 5, "the allowed-on-error log line")
        # on_error: allow never rescues a token that is refused locally.
        self.allow_proxy.revoke_token(token)
        response, _ = self.pki_operation(self.allow_proxy, token)
        self.assertEqual(response.status, 403)

    def test_an_error_status_from_the_webhook_follows_on_error(self):
        token_deny = self.deny_proxy.issue_token("canned", "device-500-deny")["token"]
        token_allow = self.allow_proxy.issue_token("canned", "device-500-allow")["token"]
        self.mdm.configure(status=500)
        self.assertEqual(self.pki_operation(self.deny_proxy, token_deny)[0].status, 503)
        self.assertEqual(self.pki_operation(self.allow_proxy, token_allow)[0].status, 200)

    def test_a_4xx_from_the_webhook_is_a_refusal_even_when_on_error_is_allow(self):
        # The MDM answered (a wrong bearer token, a moved url, rate limiting): not an outage.
        token = self.allow_proxy.issue_token("canned", "device-4xx-allow")["token"]
        upstream_before = self.canned.request_count()
        for status in (401, 403, 404, 429):
            with self.subTest(status=status):
                self.mdm.configure(status=status)   # its body still says {"allow": true}
                response, _ = self.pki_operation(self.allow_proxy, token)
                self.assertEqual((response.status, response.body.rstrip(b"\n")), (403, b"device_not_compliant"))
                detail = f"webhook answered HTTP {status}"
                harness.wait_until(lambda: [e for e in self.log_events(self.allow_proxy, "store_webhook_denied")
                                            if e.get("token") == harness.token_id(token)
                                            and e.get("detail") == detail], 5, "the refusal's log line")
        self.assertEqual(
            [r for r in self.canned.requests()[upstream_before:] if r.operation == "PKIOperation"], [])
        self.assertEqual([e for e in self.log_events(self.allow_proxy, "store_unavailable_allowed")
                          if e.get("token") == harness.token_id(token)], [])
        entry = self.allow_proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation")
        self.assertEqual((entry.get("status"), entry.get("reason")), ("403", "device_not_compliant"))


if __name__ == "__main__":
    harness.main()
