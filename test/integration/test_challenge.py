#!/usr/bin/env python3
# Integration: dynamic NDES challenges from a fake mscep_admin (Basic, NTLMv2, TLS) through the admin API, the CLI and check --probe; scepclient enrolls with them.
import datetime
import hashlib
import hmac
import os
import secrets
import struct
import subprocess
import threading
import time
import unittest

import harness
import fake_ndes
from fake_ndes import FakeNdes
from harness import Profile, enroll, json_request, proxy_config, stored_token_count

SERVICE_ACCOUNT = "CORP\\svc-ndes"
PUBLIC_URL = "http://127.0.0.1:8080"
FIXTURE_THUMBPRINT = "3F2A9C01"


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def dynamic_challenge(url, password_file, auth="basic", **keys):
    """The YAML flow mapping of a dynamic challenge."""
    items = {"type": "dynamic", "url": f'"{url}"', "auth": auth, "username": f"'{SERVICE_ACCOUNT}'",
             "password_file": password_file, **keys}
    return "{ " + ", ".join(f"{key}: {value}" for key, value in items.items()) + " }"


class DynamicChallenges(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account_password = "Pw-" + secrets.token_hex(8)
        cls.ndes = FakeNdes(SERVICE_ACCOUNT, cls.account_password).start()
        cls.addClassCleanup(cls.ndes.stop)
        # Forwards to a scepserver once a test has a challenge to start one with.
        cls.upstream = cls.start_upstream()
        cls.admin_token = secrets.token_hex(24)
        admin_token_file = cls.write_file("admin.token", cls.admin_token + "\n")
        account_file = cls.write_file("ndes.pass", cls.account_password + "\n")
        wrong_account_file = cls.write_file("wrong.pass", "not-the-password\n")
        static_file = cls.write_file("static.pass", "static-challenge\n")

        def profile(name, mode, auth="basic", password_file=account_file, **keys):
            keys.setdefault("expected_length", 16)
            return Profile(name, cls.upstream.url,
                           challenge=dynamic_challenge(cls.ndes.url(auth, mode), password_file, auth, **keys))

        cls.profiles = [
            profile("basic", "password"),
            profile("ntlm", "password", auth="ntlm"),
            profile("bom", "password-bom"),
            profile("utf8", "password-utf8", auth="ntlm"),
            profile("cache_full", "cache_full"),
            profile("no_permission", "insufficient_permission", auth="ntlm"),
            profile("wrong_password", "password", password_file=wrong_account_file),
            profile("wrong_ntlm_password", "password", auth="ntlm", password_file=wrong_account_file),
            profile("garbage", "garbage"),
            profile("thumbprint_only", "thumbprint_only"),
            profile("server_error", "error"),
            profile("wrong_length", "password", expected_length=8),
            profile("stall", "stall", timeout="1s"),
            profile("one_at_a_time", "stall", timeout="3s", max_concurrent_fetches=1, queue_timeout="300ms"),
            Profile("unreachable", cls.upstream.url, challenge=dynamic_challenge(
                "http://127.0.0.1:1/certsrv/mscep_admin/", account_file, timeout="2s")),
            Profile("fixed", cls.upstream.url, challenge_file=static_file),
        ]
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, cls.profiles, public_url=PUBLIC_URL,
                                                 admin_token_file=admin_token_file, metrics=True))
        cls.admin = cls.proxy.listener_address("admin")
        cls.metrics = cls.proxy.listener_address("metrics")

    def post_enrollment(self, profile, device, **extra):
        return json_request(self.admin, "POST", "/api/v1/enrollments",
                            {"profile": profile, "device_id": device, **extra}, token=self.admin_token)

    def real_scep_url(self, scep_url):
        """scep_url names the public URL; the test reaches the same path on the proxy's real address."""
        self.assertTrue(scep_url.startswith(PUBLIC_URL + "/scep/"), scep_url)
        host, port = self.proxy.address
        return f"http://{host}:{port}" + scep_url[len(PUBLIC_URL):]

    def fetch_counter(self, profile, outcome):
        response = harness.http_get(self.metrics, "/metrics")
        wanted = f'scepproxy_challenge_fetch_total{{outcome="{outcome}",profile="{profile}"}} '
        for line in response.body.decode().splitlines():
            if line.startswith(wanted):
                return float(line[len(wanted):])
        self.fail(f"no {wanted!r} in /metrics")

    # --- success ----------------------------------------------------------------

    def test_basic_and_ntlm_return_the_fresh_challenge_from_the_utf16_page(self):
        for profile in ("basic", "ntlm"):
            with self.subTest(profile=profile):
                before = time.time()
                response, answer = self.post_enrollment(profile, f"device-{profile}-fresh")
                self.assertEqual(response.status, 201, response.body)
                self.assertEqual(set(answer), {"token", "scep_url", "challenge", "expires_at"})
                # The password NDES (the fake) just issued, not the thumbprint shown before it.
                self.assertEqual(answer["challenge"], self.ndes.issued_passwords()[-1])
                self.assertFalse(answer["challenge"].startswith(FIXTURE_THUMBPRINT))
                self.assertEqual(answer["scep_url"], f"{PUBLIC_URL}/scep/{answer['token']}")
                # token_ttl defaults to 55m, under the challenge's 60m lifetime.
                self.assertLessEqual(parse_time(answer["expires_at"]), time.time() + 55 * 60 + 1)
                self.assertGreaterEqual(parse_time(answer["expires_at"]), before + 55 * 60 - 1)

    def test_every_page_encoding_is_read(self):
        for profile in ("bom", "utf8"):
            with self.subTest(profile=profile):
                response, answer = self.post_enrollment(profile, f"device-{profile}")
                self.assertEqual(response.status, 201, response.body)
                self.assertEqual(answer["challenge"], self.ndes.issued_passwords()[-1])

    def test_expiry_never_exceeds_the_challenge_lifetime(self):
        response, answer = self.post_enrollment("ntlm", "device-long-ttl", ttl="1d")
        self.assertEqual(response.status, 201, response.body)
        self.assertLessEqual(parse_time(answer["expires_at"]), time.time() + 60 * 60 + 1)

    def test_scepclient_enrolls_with_the_challenge_basic_and_ntlm(self):
        for profile in ("basic", "ntlm"):
            with self.subTest(profile=profile):
                response, answer = self.post_enrollment(profile, f"device-enroll-{profile}")
                self.assertEqual(response.status, 201, response.body)
                scepserver = harness.ScepServer(os.path.join(self.workdir, profile), answer["challenge"]).start()
                try:
                    self.upstream.forward_to = f"127.0.0.1:{scepserver.port}"
                    result = enroll(self.workdir, self.real_scep_url(answer["scep_url"]), answer["challenge"],
                                    f"device-enroll-{profile}")
                    self.assertEqual(result.returncode, 0, result.output)
                    self.assertEqual(harness.certificate_subject(result.certificate)["CN"], f"device-enroll-{profile}")
                    self.assertTrue(harness.certificate_verifies(scepserver.ca_pem, result.certificate))
                    # The challenge really is what scepserver checks: with another one (on a fresh token,
                    # so the proxy forwards it), the CA refuses.
                    _, second = self.post_enrollment(profile, f"device-wrong-{profile}")
                    wrong = enroll(self.workdir, self.real_scep_url(second["scep_url"]), "0000000000000000",
                                   f"device-wrong-{profile}")
                    self.assertIsNone(wrong.certificate, wrong.output)
                    entry = self.proxy.wait_for_request_log(token=harness.token_id(second["token"]), op="PKIOperation")
                    self.assertEqual(entry.get("reason"), "forwarded", entry)
                finally:
                    self.upstream.forward_to = None
                    scepserver.stop()

    # --- failures -------------------------------------------------------------------

    def test_each_failure_gives_its_own_error_and_leaves_no_token(self):
        cases = [
            ("cache_full", 503, "password_cache_full"),
            ("no_permission", 502, "insufficient_permission"),
            ("wrong_password", 502, "auth_failed"),
            ("wrong_ntlm_password", 502, "auth_failed"),
            ("garbage", 502, "unparsable_page"),
            ("thumbprint_only", 502, "unparsable_page"),
            ("wrong_length", 502, "unparsable_page"),
            ("server_error", 502, "http_error"),
            ("stall", 504, "timeout"),
            ("unreachable", 502, "unreachable"),
        ]
        for profile, status, error in cases:
            with self.subTest(profile=profile):
                device = f"device-failure-{profile}"
                response, answer = self.post_enrollment(profile, device)
                self.assertEqual(response.status, status, response.body)
                self.assertEqual(answer, {"error": error})
                self.assertEqual(stored_token_count(self.workdir, device), 0)

    def test_wrong_ntlm_password_is_refused_by_the_fake(self):
        # Same account, same URL: only the password differs, and only the right one gets a page.
        issued_before = len(self.ndes.issued_passwords())
        response, answer = self.post_enrollment("wrong_ntlm_password", "device-ntlm-wrong")
        self.assertEqual((response.status, answer), (502, {"error": "auth_failed"}))
        self.assertEqual(len(self.ndes.issued_passwords()), issued_before, "the fake served a page to a wrong password")
        response, answer = self.post_enrollment("ntlm", "device-ntlm-right")
        self.assertEqual(response.status, 201, response.body)
        self.assertEqual(len(self.ndes.issued_passwords()), issued_before + 1)

    def test_a_stalled_ndes_times_out_within_the_profile_timeout(self):
        response, answer = self.post_enrollment("stall", "device-stall")
        self.assertEqual((response.status, answer), (504, {"error": "timeout"}))
        self.assertGreaterEqual(response.elapsed, 0.9)
        self.assertLess(response.elapsed, 10)

    def test_concurrent_fetches_are_limited_and_the_wait_is_bounded(self):
        stalled_before = self.ndes.fetch_count("stall")
        first = {}

        def hold_the_slot():
            first["response"], first["answer"] = self.post_enrollment("one_at_a_time", "device-slot-1")
        thread = threading.Thread(target=hold_the_slot)
        thread.start()
        # The first request holds the profile's only slot once the fake has its request.
        harness.wait_until(lambda: self.ndes.fetch_count("stall") > stalled_before, harness.START_TIMEOUT,
                           "the first fetch to reach the fake")
        response, answer = self.post_enrollment("one_at_a_time", "device-slot-2")
        # Busy while the slot is still held (the first fetch ends at its 3s timeout): the wait was bounded.
        self.assertEqual((response.status, answer), (503, {"error": "busy"}))
        self.assertEqual(self.ndes.fetch_count("stall"), stalled_before + 1, "the refused request reached NDES")
        thread.join(harness.HTTP_TIMEOUT)
        self.assertEqual(first["response"].status, 504, first["response"].body)
        self.assertEqual(stored_token_count(self.workdir, "device-slot-2"), 0)

    # --- the CLI, probe, metrics, logs -------------------------------------------------

    def test_token_issue_fetches_through_the_same_code_path(self):
        issued = self.proxy.issue_token("ntlm", "device-cli")
        self.assertEqual(issued["challenge"], self.ndes.issued_passwords()[-1])
        result = self.proxy.cli("token", "issue", args=["--profile", "cache_full", "--device", "device-cli-full"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("password_cache_full", result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertEqual(stored_token_count(self.workdir, "device-cli-full"), 0)

    def test_check_probe_fetches_one_challenge_per_dynamic_profile(self):
        issued_before = len(self.ndes.issued_passwords())
        result = self.proxy.cli("check", args=["--probe"])
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)  # some profiles fail on purpose
        lines = result.stdout.splitlines()
        self.assertIn("profile basic: challenge: ok", "\n".join(lines))
        self.assertTrue(any(line.startswith("profile cache_full: challenge: password_cache_full") for line in lines))
        self.assertTrue(any(line.startswith("profile wrong_ntlm_password: challenge: auth_failed") for line in lines))
        self.assertFalse(any(line.startswith("profile fixed: challenge") for line in lines))
        self.assertIn("probe failed", result.stderr)
        # basic, ntlm, bom, utf8 and wrong_length each got a page (one password each).
        self.assertEqual(len(self.ndes.issued_passwords()), issued_before + 5)
        for password in self.ndes.issued_passwords():
            self.assertNotIn(password, result.stdout + result.stderr)

    def test_fetches_are_counted_by_profile_and_outcome(self):
        before_full = self.fetch_counter("cache_full", "password_cache_full")
        before_ok = self.fetch_counter("basic", "ok")
        self.post_enrollment("cache_full", "device-count-1")
        self.post_enrollment("basic", "device-count-2")
        self.assertEqual(self.fetch_counter("cache_full", "password_cache_full"), before_full + 1)
        self.assertEqual(self.fetch_counter("basic", "ok"), before_ok + 1)
        entry = harness.wait_until(
            lambda: [f for f in map(harness.parse_logfmt, harness.read_text(self.proxy.stdout_path).splitlines())
                     if f.get("event") == "challenge_fetch" and f.get("profile") == "cache_full"],
            5, "a challenge_fetch log line")[-1]
        self.assertEqual(entry.get("outcome"), "password_cache_full")

    def test_no_challenge_or_account_password_in_the_output(self):
        self.post_enrollment("basic", "device-secret-check")
        output = self.proxy.output()
        self.assertNotIn(self.account_password, output)
        self.assertNotIn(self.admin_token, output)
        for password in self.ndes.issued_passwords():
            self.assertNotIn(password, output)


# --- the fake's NTLM check itself ---------------------------------------------------------

def authenticate_message(user, domain, nt_response, unicode=True):
    """A Type-3 message with these fields (LM response, workstation and session key empty)."""
    encoding = "utf-16-le" if unicode else "latin-1"
    payload = [b"", nt_response, domain.encode(encoding), user.encode(encoding), b"", b""]
    header, data, offset = b"", b"", 64
    for field in payload:
        header += struct.pack("<HHI", len(field), len(field), offset + len(data))
        data += field
    flags = fake_ndes.NEGOTIATE_UNICODE if unicode else 0
    return fake_ndes.NTLMSSP_SIGNATURE + struct.pack("<I", 3) + header + struct.pack("<I", flags) + data


def ntlmv2_response(password, user, domain, server_challenge):
    """What a client computes (MS-NLMP 3.3.2): NTProofStr + blob."""
    blob = b"\x01\x01\x00\x00" + b"\x00" * 4 + b"\x00" * 8 + secrets.token_bytes(8) + b"\x00" * 4 + b"\x00" * 4
    proof = hmac.new(fake_ndes.ntowf_v2(password, user, domain), server_challenge + blob, hashlib.md5).digest()
    return proof + blob


class FakeNdesNtlm(unittest.TestCase):
    """The fake must verify NTLMv2 for real, or the NTLM tests above would prove nothing."""

    def test_md4_and_ntowfv2_match_the_published_vectors(self):
        self.assertEqual(fake_ndes.md4(b"").hex(), "31d6cfe0d16ae931b73c59d7e0c089c0")           # RFC 1320
        self.assertEqual(fake_ndes.md4(b"abc").hex(), "a448017aaf21d8525fc10ae87aa6729d")
        self.assertEqual(fake_ndes.md4(b"1234567890" * 8).hex(), "e33b4ddc9c38f2199c3e7b164fcc0536")
        self.assertEqual(fake_ndes.md4("Password".encode("utf-16-le")).hex(), "a4f49c406510bdcab6824ee7c30fd852")
        self.assertEqual(fake_ndes.ntowf_v2("Password", "User", "Domain").hex(),       # MS-NLMP 4.2.4.1.1
                         "0c868a403bfd7a93a3001ef22ef02e3f")

    def test_only_an_ntlmv2_response_from_the_right_password_and_account_passes(self):
        challenge = secrets.token_bytes(8)
        account = SERVICE_ACCOUNT
        verify = fake_ndes.verify_authenticate_message

        def message(password, user="svc-ndes", domain="CORP", server_challenge=challenge):
            return authenticate_message(user, domain, ntlmv2_response(password, user, domain, server_challenge))
        self.assertTrue(verify(message("right"), challenge, account, "right"))
        self.assertTrue(verify(message("right", user="SVC-NDES", domain="corp"), challenge, account, "right"))
        self.assertFalse(verify(message("wrong"), challenge, account, "right"))
        self.assertFalse(verify(message("right", server_challenge=secrets.token_bytes(8)), challenge, account, "right"))
        self.assertFalse(verify(message("right", user="other"), challenge, account, "right"))
        self.assertFalse(verify(message("right", domain="OTHER"), challenge, account, "right"))
        ntlmv1 = authenticate_message("svc-ndes", "CORP", secrets.token_bytes(24))
        self.assertFalse(verify(ntlmv1, challenge, account, "right"))
        self.assertFalse(verify(b"NTLMSSP\x00" + b"\x03\x00\x00\x00", challenge, account, "right"))


# --- TLS ------------------------------------------------------------------------------

def make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1, and a client certificate, by openssl."""
    def run(*args):
        subprocess.run([harness.Tools.openssl, *args], cwd=directory, check=True, capture_output=True,
                       timeout=harness.CLI_TIMEOUT)
    os.makedirs(directory, exist_ok=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test NDES CA")
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                            ("client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(directory, f"{name}.ext"), "w") as f:
            f.write(extension + "\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN=test {name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {name: os.path.join(directory, name) for name in
            ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


class ChallengeOverTls(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        files = make_certificates(os.path.join(cls.workdir, "pki"))
        password = "Pw-" + secrets.token_hex(8)
        account_file = cls.write_file("ndes.pass", password + "\n")
        cls.ndes = FakeNdes(SERVICE_ACCOUNT, password, tls=(files["server.pem"], files["server.key"], None)).start()
        cls.addClassCleanup(cls.ndes.stop)
        cls.ndes_mtls = FakeNdes(SERVICE_ACCOUNT, password,
                                 tls=(files["server.pem"], files["server.key"], files["ca.pem"])).start()
        cls.addClassCleanup(cls.ndes_mtls.stop)
        ca, cert, key = files["ca.pem"], files["client.pem"], files["client.key"]
        upstream = "http://127.0.0.1:9/scep"   # never contacted: these tests only issue tokens

        def profile(name, ndes, auth="basic", **keys):
            return Profile(name, upstream, challenge=dynamic_challenge(ndes.url(auth, "password"), account_file, auth,
                                                                       **keys))

        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            profile("trusted", cls.ndes, auth="ntlm", ca_file=ca),
            profile("untrusted", cls.ndes),                    # system store: our test CA isn't in it
            profile("unverified", cls.ndes, verify="false"),
            profile("client_cert", cls.ndes_mtls, auth="ntlm", ca_file=ca, client_cert_file=cert, client_key_file=key),
            profile("no_client_cert", cls.ndes_mtls, ca_file=ca),
        ], admin_token_file=cls.write_file("admin.token", "t" * 32 + "\n")))
        cls.admin = cls.proxy.listener_address("admin")

    def post(self, profile):
        return json_request(self.admin, "POST", "/api/v1/enrollments", {"profile": profile, "device_id": f"d-{profile}"},
                            token="t" * 32)

    def test_https_with_the_configured_ca(self):
        response, answer = self.post("trusted")
        self.assertEqual(response.status, 201, response.body)
        self.assertEqual(answer["challenge"], self.ndes.issued_passwords()[-1])

    def test_an_untrusted_certificate_is_a_tls_error(self):
        response, answer = self.post("untrusted")
        self.assertEqual((response.status, answer), (502, {"error": "tls_error"}))
        self.assertEqual(stored_token_count(self.workdir, "d-untrusted"), 0)

    def test_verify_false_accepts_any_certificate(self):
        response, _ = self.post("unverified")
        self.assertEqual(response.status, 201, response.body)

    def test_a_client_certificate_is_presented_when_configured(self):
        response, answer = self.post("client_cert")
        self.assertEqual(response.status, 201, response.body)
        self.assertEqual(answer["challenge"], self.ndes_mtls.issued_passwords()[-1])

    def test_no_client_certificate_where_one_is_required_is_a_tls_error(self):
        response, answer = self.post("no_client_cert")
        self.assertEqual((response.status, answer), (502, {"error": "tls_error"}))
        self.assertEqual(stored_token_count(self.workdir, "d-no_client_cert"), 0)


if __name__ == "__main__":
    harness.main()
