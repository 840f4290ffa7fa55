#!/usr/bin/env python3
# Integration: PKIOperation checks and transport repair — message validation, GET<->POST translation, CertRep observation.
import base64
import datetime
import http.client
import json
import os
import time
import urllib.parse
import uuid

import harness
from harness import CannedAnswer, Profile, enroll, http_get, http_post_pki, proxy_config

CHALLENGE = "pki-" + uuid.uuid4().hex[:12]
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "pkcs7", "data")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


class PkiOperationThroughPostUpstream(harness.IntegrationTestCase):
    """The upstream (scepserver) lists POSTPKIOperation: every PKIOperation goes upstream as POST."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        challenge_file = cls.write_file("challenge", CHALLENGE)
        config = proxy_config(cls.workdir, [Profile("demo", cls.upstream.url, challenge_file=challenge_file)])
        config += 'metrics:\n  listen: "127.0.0.1:0"\n'
        cls.proxy = cls.start_proxy(config)
        cls.token = cls.proxy.issue_token("demo", "device-pki")["token"]

    def pki_requests_since(self, count_before):
        return [r for r in self.upstream.requests()[count_before:] if r.operation == "PKIOperation"]

    def test_get_message_goes_upstream_as_post_with_the_same_der(self):
        der = fixture("pkcsreq.der")
        message = base64.urlsafe_b64encode(der).decode().rstrip("=")  # as micromdm scepclient sends it
        before = self.upstream.request_count()
        response = http_get(self.proxy.address, f"/scep/{self.token}?operation=PKIOperation&message={message}")
        # scepserver can't decrypt a message made for another CA: it answers, and the proxy passes that on.
        self.assertNotEqual(response.status, 400, response.body)
        sent = self.pki_requests_since(before)
        self.assertEqual(len(sent), 1, [vars(r) for r in sent])
        self.assertEqual(sent[0].method, "POST")
        self.assertEqual(sent[0].body, der)
        self.assertEqual(sent[0].headers.get("content-length"), str(len(der)))
        self.assertNotIn("transfer-encoding", sent[0].headers)

    def test_standard_base64_with_raw_plus_and_line_breaks_decodes(self):
        der = fixture("pkcsreq.der")
        text = base64.b64encode(der).decode()
        wrapped = "%0D%0A".join(text[i:i + 64] for i in range(0, len(text), 64))  # '+' left raw, as macOS does
        before = self.upstream.request_count()
        response = http_get(self.proxy.address, f"/scep/{self.token}?operation=PKIOperation&message={wrapped}")
        self.assertNotEqual(response.status, 400, response.body)
        sent = self.pki_requests_since(before)
        self.assertEqual([r.body for r in sent], [der])

    def test_malformed_messages_get_400_and_never_reach_the_upstream(self):
        der = fixture("pkcsreq.der")
        cases = [
            ("POST", b"\x30\x82\x01\x00" + b"\x00" * 256),      # DER-looking garbage
            ("POST", der[: len(der) // 2]),                      # truncated pkiMessage
            ("POST", b"hello"),
            ("GET", "not*base64!"),
            ("GET", "%ZZ"),
        ]
        for method, payload in cases:
            with self.subTest(method=method, payload=payload[:20]):
                before = self.upstream.request_count()
                if method == "POST":
                    response = http_post_pki(self.proxy.address, f"/scep/{self.token}?operation=PKIOperation", payload)
                else:
                    response = http_get(self.proxy.address, f"/scep/{self.token}?operation=PKIOperation&message={payload}")
                self.assertEqual(response.status, 400, response.body)
                self.assertEqual(response.body.strip(), b"malformed_message")
                self.assertEqual(self.upstream.request_count(), before)
        self.assertProxyServes(self.proxy, self.token)

    def test_body_arriving_in_many_pieces_keeps_the_request_intact(self):
        # The connection's buffer grows while the body arrives: the request's path must survive that.
        der = fixture("pkcsreq.der")
        head = (f"POST /scep/{self.token}/pkiclient.exe?operation=PKIOperation HTTP/1.1\r\nHost: proxy\r\n"
                f"Content-Type: application/x-pki-message\r\nContent-Length: {len(der)}\r\n\r\n").encode()
        before = self.upstream.request_count()
        response = harness.raw_exchange(self.proxy.address, head + der, pieces=8)
        self.assertNotIn(response.status, (400, 404), response.body)
        sent = self.pki_requests_since(before)
        self.assertEqual([r.body for r in sent], [der])

    def test_a_certrep_from_a_device_is_not_forwarded(self):
        before = self.upstream.request_count()
        response = http_post_pki(self.proxy.address, f"/scep/{self.token}?operation=PKIOperation",
                                 fixture("certrep-success.der"))
        self.assertEqual(response.status, 400, response.body)
        self.assertEqual(response.body.strip(), b"message_type_not_allowed")
        self.assertEqual(self.upstream.request_count(), before)

    def test_enrollment_outcome_is_logged_and_counted(self):
        token = self.proxy.issue_token("demo", "device-observed")["token"]
        before = self.proxy.metric_value("scepproxy_pki_status_total", profile="demo",
                                         message_type="PKCSReq", status="SUCCESS")
        result = enroll(self.workdir, self.proxy.scep_url(token), CHALLENGE, "observed-device")
        self.assertEqual(result.returncode, 0, result.output)
        self.assertIsNotNone(result.certificate, result.output)
        entry = self.proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation")
        self.assertEqual(entry.get("msg_type"), "PKCSReq")
        self.assertEqual(entry.get("pki_status"), "SUCCESS")
        after = self.proxy.metric_value("scepproxy_pki_status_total", profile="demo",
                                        message_type="PKCSReq", status="SUCCESS")
        self.assertEqual(after, (before or 0) + 1)


class TransactionBinding(harness.IntegrationTestCase):
    """A token is good for one certificate: bound to the first transaction, consumed on SUCCESS."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.upstream.url, challenge_file=challenge_file)]))

    def post(self, token, der):
        return http_post_pki(self.proxy.address, f"/scep/{token}?operation=PKIOperation", der)

    def signature_warnings(self, token):
        return [fields for fields in self.proxy.log_events("pki_message_signature_invalid")
                if fields.get("token") == harness.token_id(token)]

    def test_the_message_that_binds_the_token_has_its_signature_checked(self):
        token = self.proxy.issue_token("demo", "device-tampered")["token"]
        der = bytearray(fixture("pkcsreq-wrong-challenge.der"))
        der[-1] ^= 0x01  # the last byte of the signerInfo's signature
        self.assertNotEqual(self.post(token, bytes(der)).status, 403)  # forwarded: the CA judges
        entry = self.proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation")
        self.assertEqual(entry.get("msg_type"), "PKCSReq")
        warnings = self.signature_warnings(token)
        self.assertEqual(len(warnings), 1, warnings)
        self.assertEqual(warnings[0].get("signature_valid"), "false")
        self.assertEqual(warnings[0].get("content_digest_valid"), "true")
        # Resends of the bound transaction are not checked again; an intact message is never reported.
        self.assertNotEqual(self.post(token, bytes(der)).status, 403)
        intact = self.proxy.issue_token("demo", "device-intact")["token"]
        self.assertNotEqual(self.post(intact, fixture("pkcsreq-wrong-challenge.der")).status, 403)
        self.proxy.wait_for_request_log(token=harness.token_id(intact), op="PKIOperation")
        self.assertEqual(len(self.signature_warnings(token)), 1)
        self.assertEqual(self.signature_warnings(intact), [])

    def test_another_transaction_on_a_bound_token_is_refused(self):
        token = self.proxy.issue_token("demo", "device-bound")["token"]
        first, other = fixture("pkcsreq.der"), fixture("pkcsreq-wrong-challenge.der")  # two transactionIDs
        # scepserver can't decrypt these captures (another CA's): no CertRep, so the token stays bound.
        self.assertNotEqual(self.post(token, first).status, 403)
        resent = self.post(token, first)  # clients resend their PKCSReq after PENDING: same transaction, allowed
        self.assertNotEqual(resent.status, 403, resent.body)
        before = self.upstream.request_count()
        response = self.post(token, other)
        self.assertEqual(response.status, 403, response.body)
        self.assertEqual(response.body.strip(), b"transaction_mismatch")
        self.assertEqual(self.upstream.request_count(), before)
        entry = self.proxy.wait_for_request_log(token=harness.token_id(token), reason="transaction_mismatch")
        self.assertEqual(entry.get("status"), "403")

    def show_token(self, token):
        shown = self.proxy.cli("token", "show", args=[token])
        self.assertEqual(shown.returncode, 0, shown.stderr)
        return json.loads(shown.stdout)

    def test_success_consumes_the_token(self):
        token = self.proxy.issue_token("demo", "device-once")["token"]
        unused = self.show_token(token)
        self.assertEqual((unused["state"], unused["consumed_at"]), ("active", None), unused)
        started = int(time.time())
        first = enroll(self.workdir, self.proxy.scep_url(token), CHALLENGE, "once-device")
        self.assertEqual(first.returncode, 0, first.output)
        self.assertIsNotNone(first.certificate, first.output)
        before = [r for r in self.upstream.requests() if r.operation == "PKIOperation"]
        second = enroll(self.workdir, self.proxy.scep_url(token), CHALLENGE, "twice-device")  # a new key
        self.assertIsNone(second.certificate, second.output)
        self.proxy.wait_for_request_log(token=harness.token_id(token), reason="token_consumed", status="403")
        after = [r for r in self.upstream.requests() if r.operation == "PKIOperation"]
        self.assertEqual(len(after), len(before), "the upstream saw the second enrollment")
        # token show tells the consumed token apart from an active one, and says when it was consumed.
        used = self.show_token(token)
        self.assertEqual(used["state"], "consumed", used)
        self.assertIsNotNone(used["transaction_id"], used)
        consumed_at = datetime.datetime.fromisoformat(used["consumed_at"].replace("Z", "+00:00")).timestamp()
        self.assertGreaterEqual(consumed_at, started, used)
        self.assertLessEqual(consumed_at, time.time() + 1, used)
        fresh = self.proxy.issue_token("demo", "device-once-again")["token"]
        third = enroll(self.workdir, self.proxy.scep_url(fresh), CHALLENGE, "once-again-device")
        self.assertIsNotNone(third.certificate, third.output)
        # The CA certificate stays available on a used token (clients fetch it before anything else).
        self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACert").status, 200)

    def test_failure_frees_the_token_for_another_try(self):
        token = self.proxy.issue_token("demo", "device-retry")["token"]
        wrong = enroll(self.workdir, self.proxy.scep_url(token), "not-the-challenge", "retry-device")
        self.assertIsNone(wrong.certificate, wrong.output)
        self.proxy.wait_for_request_log(token=harness.token_id(token), pki_status="FAILURE")
        right = enroll(self.workdir, self.proxy.scep_url(token), CHALLENGE, "retry-device")
        self.assertEqual(right.returncode, 0, right.output)
        self.assertIsNotNone(right.certificate, right.output)


class PkiOperationThroughGetOnlyUpstream(harness.IntegrationTestCase):
    """The upstream's GetCACaps lacks POSTPKIOperation/SCEPStandard: the proxy sends GET, canonically encoded."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        caps = CannedAnswer(200, "text/plain", b"Renewal\nSHA-256\nAES\nDES3\n")
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}",
                                          canned={"GetCACaps": caps})
        challenge_file = cls.write_file("challenge", CHALLENGE)
        # One worker: what the proxy learnt from GetCACaps is then known to every connection.
        config = proxy_config(cls.workdir, [Profile("demo", cls.upstream.url, challenge_file=challenge_file)])
        cls.proxy = cls.start_proxy(config.replace("workers: 2\n", "workers: 1\n", 1))
        cls.token = cls.proxy.issue_token("demo", "device-get")["token"]

    def test_posted_message_goes_upstream_as_get_with_canonical_base64(self):
        der = fixture("pkcsreq.der")
        before = self.upstream.request_count()
        # One connection stays on one worker: GetCACaps first, so that worker knows the upstream can't take POST.
        connection = http.client.HTTPConnection(*self.proxy.address, timeout=10)
        try:
            connection.request("GET", f"/scep/{self.token}?operation=GetCACaps")
            # Shown with POSTPKIOperation (advertise_post_pki_operation): the proxy can translate.
            self.assertEqual(connection.getresponse().read(), b"Renewal\nSHA-256\nAES\nDES3\nPOSTPKIOperation\n")
            connection.request("POST", f"/scep/{self.token}?operation=PKIOperation", body=der,
                               headers={"Content-Type": "application/x-pki-message"})
            response = connection.getresponse()
            self.assertNotEqual(response.status, 400, response.read())
        finally:
            connection.close()
        sent = [r for r in self.upstream.requests()[before:] if r.operation == "PKIOperation"]
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0].method, "GET")
        raw = dict(pair.split("=", 1) for pair in sent[0].query.split("&"))["message"]
        self.assertNotIn("+", raw)  # escaped: no upstream can mistake it for a space
        self.assertNotIn("/", raw)
        self.assertEqual(base64.b64decode(urllib.parse.unquote(raw), validate=True), der)

    def test_real_enrollment_works_through_a_get_only_upstream(self):
        # scepclient sees POSTPKIOperation (the proxy's), POSTs, and the proxy sends the upstream a GET.
        token = self.proxy.issue_token("demo", "device-get-enroll")["token"]
        before = self.upstream.request_count()
        result = enroll(self.workdir, self.proxy.scep_url(token), CHALLENGE, "get-only-device")
        self.assertEqual(result.returncode, 0, result.output)
        sent = [r.method for r in self.upstream.requests()[before:] if r.operation == "PKIOperation"]
        self.assertTrue(sent and set(sent) == {"GET"}, sent)
        self.assertIsNotNone(result.certificate, result.output)


class ScepclientGetThroughGetOnlyUpstream(harness.IntegrationTestCase):
    """No POSTPKIOperation anywhere (advertise_post_pki_operation: false): scepclient sends GET with
    base64url; the proxy repairs it into the canonical standard base64 the upstream takes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        caps = CannedAnswer(200, "text/plain", b"Renewal\nSHA-256\nAES\nDES3\n")
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}",
                                          canned={"GetCACaps": caps})
        challenge_file = cls.write_file("challenge", CHALLENGE)
        config = proxy_config(cls.workdir, [Profile("demo", cls.upstream.url, challenge_file=challenge_file)])
        config = config.replace("    timeout: 10s\n", "    timeout: 10s\n    advertise_post_pki_operation: false\n", 1)
        cls.proxy = cls.start_proxy(config)

    def test_scepclient_get_with_base64url_enrolls(self):
        token = self.proxy.issue_token("demo", "device-get-base64url")["token"]
        before = self.upstream.request_count()
        result = enroll(self.workdir, self.proxy.scep_url(token), CHALLENGE, "base64url-device")
        self.assertEqual(result.returncode, 0, result.output)
        self.assertIsNotNone(result.certificate, result.output)
        entry = self.proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation", status="200")
        self.assertEqual(entry.get("pki_status"), "SUCCESS")
        sent = [r for r in self.upstream.requests()[before:] if r.operation == "PKIOperation"]
        self.assertTrue(sent)
        for request in sent:
            self.assertEqual(request.method, "GET")
            message = dict(pair.split("=", 1) for pair in request.query.split("&"))["message"]
            self.assertFalse(set(message) & set("-_+/"), "not canonical percent-encoded standard base64")


if __name__ == "__main__":
    harness.main()
