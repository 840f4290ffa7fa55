#!/usr/bin/env python3
# Integration: the admin API — bearer credentials, enrollments and devices against the real store and SCEP listener, strict validation, limits.
import datetime
import json
import os
import secrets
import time
import urllib.parse
import uuid

import harness
from harness import Profile, json_request, proxy_config, stored_token_count

CHALLENGE = "admin-" + uuid.uuid4().hex[:12]
PUBLIC_URL = "https://scep.example.com/mdm"


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


class AdminApi(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.token = secrets.token_hex(32)
        challenge_file = cls.write_file("challenge", CHALLENGE + "\n")
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.scepserver.url, challenge_file=challenge_file),
            Profile("plain", cls.scepserver.url, token_ttl="2h"),
        ], limits={"max_body_bytes": 8192}, public_url=PUBLIC_URL,
            admin_token_file=cls.write_file("admin.token", cls.token + "\n")))
        cls.admin = cls.proxy.listener_address("admin")

    def call(self, method, target, body=None, token=None, **kwargs):
        return json_request(self.admin, method, target, body, token=self.token if token is None else token, **kwargs)

    def issue(self, profile, device, **extra):
        response, answer = self.call("POST", "/api/v1/enrollments", {"profile": profile, "device_id": device, **extra})
        self.assertEqual(response.status, 201, response.body)
        return answer

    # --- credentials ------------------------------------------------------------------

    def test_health_endpoints_answer_without_credentials(self):
        response, answer = json_request(self.admin, "GET", "/healthz")
        self.assertEqual((response.status, answer), (200, {"status": "ok"}))
        response, answer = json_request(self.admin, "GET", "/readyz")
        self.assertEqual((response.status, answer), (200, {"status": "ready"}))

    def test_no_or_wrong_credentials_get_401_and_nothing_else(self):
        targets = [("POST", "/api/v1/enrollments"), ("GET", f"/api/v1/enrollments/{uuid.uuid4()}"),
                   ("DELETE", f"/api/v1/enrollments/{uuid.uuid4()}"), ("GET", "/api/v1/devices/d"),
                   ("PUT", "/api/v1/devices/d"), ("GET", "/no/such/path"), ("PATCH", "/api/v1/enrollments")]
        credentials = {
            "none": {},
            "wrong token": {"Authorization": "Bearer " + secrets.token_hex(32)},
            "token with one more character": {"Authorization": f"Bearer {self.token}0"},
            "token prefix": {"Authorization": f"Bearer {self.token[:-1]}"},
            "basic scheme": {"Authorization": f"Basic {self.token}"},
            "no scheme": {"Authorization": self.token},
            "empty bearer": {"Authorization": "Bearer "},
        }
        body = json.dumps({"profile": "demo", "device_id": "d"}).encode()
        for method, target in targets:
            for name, headers in credentials.items():
                with self.subTest(target=target, method=method, credentials=name):
                    response = harness.http_request(self.admin, method, target, body=body,
                                                    headers={"Content-Type": "application/json", **headers})
                    self.assertEqual(response.status, 401)
                    self.assertEqual(json.loads(response.body), {"error": "unauthorized"})
                    self.assertEqual(response.headers.get("www-authenticate"), "Bearer")
        self.assertEqual(stored_token_count(self.workdir, "d"), 0)

    def test_two_authorization_fields_are_refused_even_with_the_right_token(self):
        request = (f"GET /api/v1/devices/d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n"
                   f"Authorization: Bearer wrong\r\nConnection: close\r\n\r\n").encode()
        self.assertEqual(harness.raw_exchange(self.admin, request).status, 401)

    def test_the_scheme_is_case_insensitive(self):
        response, _ = json_request(self.admin, "GET", "/api/v1/devices/unknown-device",
                                   headers={"Authorization": f"bearer {self.token}"})
        self.assertEqual(response.status, 404)

    # --- enrollments ---------------------------------------------------------------------

    def test_post_issues_a_token_the_scep_listener_accepts(self):
        answer = self.issue("demo", "device-post")
        self.assertEqual(set(answer), {"token", "scep_url", "challenge", "expires_at"})
        self.assertEqual(answer["scep_url"], f"{PUBLIC_URL}/scep/{answer['token']}")
        self.assertEqual(answer["challenge"], CHALLENGE)
        response = harness.http_get(self.proxy.address, f"/scep/{answer['token']}?operation=GetCACaps")
        self.assertEqual(response.status, 200, response.body)

    def test_the_issued_token_enrolls_a_device(self):
        answer = self.issue("demo", "device-enroll")
        result = harness.enroll(self.workdir, self.proxy.scep_url(answer["token"]), answer["challenge"], "device-enroll")
        self.assertEqual(result.returncode, 0, result.output)
        self.assertEqual(harness.certificate_subject(result.certificate)["CN"], "device-enroll")

    def test_ttl_and_profiles_without_a_challenge(self):
        before = time.time()
        answer = self.issue("plain", "device-ttl", ttl="90s")
        self.assertIsNone(answer["challenge"])
        self.assertGreaterEqual(parse_time(answer["expires_at"]), int(before) + 90)
        self.assertLessEqual(parse_time(answer["expires_at"]), time.time() + 91)
        default = self.issue("plain", "device-default-ttl")   # the profile's token_ttl: 2h
        self.assertGreaterEqual(parse_time(default["expires_at"]), int(before) + 7200)

    def test_get_shows_and_delete_revokes_an_enrollment(self):
        answer = self.issue("demo", "device-lifecycle")
        token = answer["token"]
        response, shown = self.call("GET", f"/api/v1/enrollments/{token}")
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual(shown["token_id"], harness.token_id(token))
        self.assertEqual((shown["profile"], shown["device_id"], shown["state"]), ("demo", "device-lifecycle", "active"))
        self.assertEqual(shown["expires_at"], answer["expires_at"])
        self.assertNotIn(token, response.body.decode())   # the token itself is never shown again

        response, revoked = self.call("DELETE", f"/api/v1/enrollments/{token.upper()}")
        self.assertEqual((response.status, revoked), (200, {"token_id": harness.token_id(token), "state": "revoked"}))
        self.assertEqual(self.call("GET", f"/api/v1/enrollments/{token}")[1]["state"], "revoked")
        refused = harness.http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps")
        self.assertEqual(refused.status, 403)

    def test_unknown_and_malformed_tokens(self):
        for method in ("GET", "DELETE"):
            with self.subTest(method=method):
                response, answer = self.call(method, f"/api/v1/enrollments/{uuid.uuid4()}")
                self.assertEqual((response.status, answer), (404, {"error": "not_found"}))
                response, answer = self.call(method, "/api/v1/enrollments/not-a-guid")
                self.assertEqual((response.status, answer), (400, {"error": "the token must be a GUID"}))

    # --- devices -------------------------------------------------------------------------

    def test_put_and_get_device_state(self):
        device = "laptop/42 é"
        path = "/api/v1/devices/" + urllib.parse.quote(device, safe="")
        response, answer = self.call("GET", path)
        self.assertEqual((response.status, answer), (404, {"error": "not_found"}))
        response, answer = self.call("PUT", path, {"enrolled": True, "compliant": False})
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual((answer["device_id"], answer["enrolled"], answer["compliant"]), (device, True, False))
        response, answer = self.call("GET", path)
        self.assertEqual(response.status, 200, response.body)
        self.assertEqual((answer["device_id"], answer["enrolled"], answer["compliant"]), (device, True, False))
        self.call("PUT", path, {"enrolled": True, "compliant": True})
        self.assertTrue(self.call("GET", path)[1]["compliant"])

    def test_a_device_set_non_compliant_keeps_its_state_when_a_token_is_issued(self):
        self.call("PUT", "/api/v1/devices/device-nc", {"enrolled": True, "compliant": False})
        self.issue("demo", "device-nc")
        self.assertFalse(self.call("GET", "/api/v1/devices/device-nc")[1]["compliant"])

    # --- validation and routing -------------------------------------------------------------

    def test_invalid_enrollment_requests_get_400_with_a_message(self):
        cases = [
            (b"", "the body must be a JSON object"),
            (b"not json", "the body must be a JSON object"),
            (b'["demo"]', "the body must be a JSON object"),
            (b'{"profile":"demo"}', "device_id is required"),
            (b'{"device_id":"d"}', "profile is required"),
            (b'{"profile":"demo","device_id":7}', "device_id must be a string"),
            (b'{"profile":"demo","device_id":"d","ttl":60}', 'ttl must be a duration string such as "30m"'),
            (b'{"profile":"demo","device_id":"d","ttl":"-5m"}', 'ttl must be a duration greater than 0, such as "30m" or "1h"'),
            (b'{"profile":"demo","device_id":"d","extra":1}', "unknown member 'extra' (expected profile, device_id, ttl)"),
            (b'{"profile":"demo","device_id":"d","device_id":"e"}', "a member appears more than once"),
            (b'{"profile":"nope","device_id":"d"}', "unknown profile 'nope'"),
            (b'{"profile":"demo","device_id":""}', "device id must be 1-256 printable characters"),
            (b'{"profile":"demo","device_id":"a\\u0001b"}', "device id must be 1-256 printable characters"),
        ]
        for body, message in cases:
            with self.subTest(body=body):
                response, answer = self.call("POST", "/api/v1/enrollments", body)
                self.assertEqual((response.status, answer), (400, {"error": message}))
        self.assertEqual(stored_token_count(self.workdir, "d"), 0)

    def test_invalid_device_requests_get_400(self):
        cases = [
            ("/api/v1/devices/d", b'{"enrolled":true}', "compliant is required"),
            ("/api/v1/devices/d", b'{"enrolled":"yes","compliant":true}', "enrolled must be true or false"),
            ("/api/v1/devices/a%zz", b'{"enrolled":true,"compliant":true}', "malformed percent-encoding in the device id"),
            ("/api/v1/devices/a%01b", b'{"enrolled":true,"compliant":true}', "the device id must be 1-256 printable characters"),
            ("/api/v1/devices/" + "x" * 257, b'{"enrolled":true,"compliant":true}', "the device id must be 1-256 printable characters"),
        ]
        for path, body, message in cases:
            with self.subTest(path=path, body=body):
                response, answer = self.call("PUT", path, body)
                self.assertEqual((response.status, answer), (400, {"error": message}))

    def test_bodies_must_be_json(self):
        for method, path in (("POST", "/api/v1/enrollments"), ("PUT", "/api/v1/devices/d")):
            with self.subTest(path=path):
                response, answer = self.call(method, path, b'{"profile":"demo","device_id":"d"}',
                                             headers={"Content-Type": "text/plain"})
                self.assertEqual((response.status, answer), (415, {"error": "Content-Type must be application/json"}))

    def test_unknown_paths_are_404_and_wrong_methods_405(self):
        for path in ("/", "/api/v1", "/api/v1/enrollments/", "/api/v1/enrollments/a/b", "/metrics", "/scep/x"):
            with self.subTest(path=path):
                response, answer = self.call("GET", path)
                self.assertEqual((response.status, answer), (404, {"error": "not_found"}))
        for method, path, allow in (("GET", "/api/v1/enrollments", "POST"),
                                    ("PUT", f"/api/v1/enrollments/{uuid.uuid4()}", "GET, DELETE"),
                                    ("POST", "/api/v1/devices/d", "GET, PUT"), ("DELETE", "/api/v1/devices/d", "GET, PUT"),
                                    ("POST", "/healthz", "GET")):
            with self.subTest(method=method, path=path):
                response, answer = self.call(method, path)
                self.assertEqual((response.status, answer), (405, {"error": "method_not_allowed"}))
                self.assertEqual(response.headers.get("allow"), allow)

    def test_a_body_over_the_limit_is_413(self):
        body = json.dumps({"profile": "demo", "device_id": "x" * 10000}).encode()
        response, _ = self.call("POST", "/api/v1/enrollments", body)
        self.assertEqual(response.status, 413)

    # --- logs ------------------------------------------------------------------------------

    def test_each_request_is_logged_without_token_device_or_challenge(self):
        answer = self.issue("demo", "device-secret-name")
        self.call("GET", f"/api/v1/enrollments/{answer['token']}")
        entries = harness.wait_until(
            lambda: [f for f in map(harness.parse_logfmt, harness.read_text(self.proxy.stdout_path).splitlines())
                     if f.get("event") == "admin_request" and f.get("token") == harness.token_id(answer["token"])],
            5, "the admin_request log lines")
        self.assertEqual([(e["method"], e["endpoint"], e["status"]) for e in entries][-2:],
                         [("POST", "enrollments", "201"), ("GET", "enrollment", "200")])
        output = self.proxy.output()
        self.assertNotIn(answer["token"], output)
        self.assertNotIn("device-secret-name", output)
        self.assertNotIn(CHALLENGE, output)
        self.assertNotIn(self.token, output)


class AdminApiStartup(harness.IntegrationTestCase):
    def start_with_token(self, token_text, name):
        config = proxy_config(self.workdir, [Profile("p", "http://127.0.0.1:9/scep")],
                              admin_token_file=os.path.join(self.workdir, f"{name}.token"))
        if token_text is not None:
            self.write_file(f"{name}.token", token_text)
        proxy = harness.Proxy(self.workdir, config, name)
        self.addCleanup(proxy.stop)
        with self.assertRaises(RuntimeError) as failed:
            proxy.start()
        return str(failed.exception)

    def test_a_short_bearer_token_is_refused_at_start(self):
        self.assertIn("the token must be at least 16 characters", self.start_with_token("short\n", "short"))

    def test_a_missing_bearer_token_file_is_refused_at_start(self):
        self.assertIn("admin.bearer_token_file: cannot read", self.start_with_token(None, "missing"))


if __name__ == "__main__":
    harness.main()
