#!/usr/bin/env python3
# Integration: unknown, malformed, expired and revoked tokens get 403 and nothing reaches the upstream.
import datetime
import json
import time
import uuid

import harness
from harness import Profile, enroll, http_get, http_post_pki, proxy_config

CHALLENGE = "rejection-" + uuid.uuid4().hex[:12]
# Not a real pkiMessage: a refused token must be refused before the body matters.
SOME_BODY = b"\x30\x82\x01\x00" + b"\x00" * 256
STORE_CACHE_TTL = 5.0   # seconds: the default of store.cache_ttl


class TokenRejection(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.upstream.url, challenge_file=challenge_file)]))
        cls.good_token = cls.proxy.issue_token("demo", "device-good")["token"]

    def assertRefusedEverywhere(self, token_text):
        """Every SCEP operation on this token path gets 403 and the upstream sees nothing."""
        seen_before = self.upstream.request_count()
        requests = [
            ("GET", f"/scep/{token_text}?operation=GetCACert", None),
            ("GET", f"/scep/{token_text}?operation=GetCACaps", None),
            ("GET", f"/scep/{token_text}/pkiclient.exe?operation=GetCACaps", None),
            ("POST", f"/scep/{token_text}?operation=PKIOperation", SOME_BODY),
        ]
        for method, target, body in requests:
            with self.subTest(method=method, target=target):
                if body is None:
                    response = http_get(self.proxy.address, target)
                else:
                    response = http_post_pki(self.proxy.address, target, body)
                self.assertEqual(response.status, 403, response.body)
                self.assertLess(len(response.body), 200, "403 bodies are short reason codes")
        self.assertEqual(self.upstream.request_count(), seen_before,
                         [vars(r) for r in self.upstream.requests()[seen_before:]])
        self.assertProxyServes(self.proxy, self.good_token)

    def test_unknown_token(self):
        self.assertRefusedEverywhere(str(uuid.uuid4()))

    def test_malformed_tokens(self):
        good = self.good_token
        for text in ("not-a-guid", good.replace("-", ""), good[:-1], good + "0", good[:8] + "_" + good[9:],
                     "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "-" * 36):
            with self.subTest(token=text):
                self.assertRefusedEverywhere(text)

    def test_expired_token(self):
        issued = self.proxy.issue_token("demo", "device-expiring", ttl="1s")
        expires_at = datetime.datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
        # expires_at has one-second resolution: wait until it is strictly in the past.
        wait = (expires_at - datetime.datetime.now(datetime.timezone.utc)).total_seconds() + 1.1
        self.assertLess(wait, 5, f"a 1s token expires at {issued['expires_at']}")
        time.sleep(max(0.0, wait))
        self.assertRefusedEverywhere(issued["token"])

    def test_revoked_token(self):
        issued = self.proxy.issue_token("demo", "device-revoked")
        self.proxy.revoke_token(issued["token"])
        self.assertRefusedEverywhere(issued["token"])
        shown = self.proxy.cli("token", "show", args=[issued["token"]])
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertEqual(json.loads(shown.stdout).get("state"), "revoked", shown.stdout)

    def test_revocation_applies_to_a_token_in_use(self):
        issued = self.proxy.issue_token("demo", "device-in-use")
        target = f"/scep/{issued['token']}?operation=GetCACaps"
        self.assertEqual(http_get(self.proxy.address, target).status, 200)
        self.proxy.revoke_token(issued["token"])
        # Each worker may cache its access decision for store.cache_ttl (default 5 s), and a revoke
        # from another process (the CLI) can't reach those caches: by cache_ttl + 1 s every worker refuses.
        time.sleep(STORE_CACHE_TTL + 1)
        self.assertRefusedEverywhere(issued["token"])

    def test_revoked_token_scepclient_gets_no_certificate(self):
        issued = self.proxy.issue_token("demo", "device-revoked-client")
        self.proxy.revoke_token(issued["token"])
        seen_before = self.upstream.request_count()
        result = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], "device-revoked")
        self.assertNotEqual(result.returncode, 0, result.output)
        self.assertIsNone(result.certificate)
        self.assertEqual(self.upstream.request_count(), seen_before)

    def test_refusals_are_logged_without_the_token(self):
        unknown = str(uuid.uuid4())
        self.assertEqual(http_get(self.proxy.address, f"/scep/{unknown}?operation=GetCACaps").status, 403)
        entry = self.proxy.wait_for_request_log(token=harness.token_id(unknown))
        self.assertEqual(entry.get("status"), "403")
        self.assertEqual(entry.get("reason"), "token_unknown")
        self.assertEqual(entry.get("op"), "GetCACaps")
        self.assertNotIn(unknown, self.proxy.output())


if __name__ == "__main__":
    harness.main()
