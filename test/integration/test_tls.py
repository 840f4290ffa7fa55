#!/usr/bin/env python3
# Integration: TLS on the SCEP listener (devices) and to https upstreams (verification, host name, failures).
import http.client
import os
import ssl
import subprocess
import uuid

import harness
from harness import Tools, enroll, http_get, proxy_config

CHALLENGE = "tls-" + uuid.uuid4().hex[:12]


def openssl(*args, cwd):
    subprocess.run([Tools.openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory, name):
    """A throw-away CA: returns (cert path, key path)."""
    key, cert = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", cert, "-days", "2", "-subj", f"/CN={name}", cwd=directory)
    return cert, key


def make_server_cert(directory, name, ca, san):
    """A server certificate signed by `ca` for the given subjectAltName, e.g. 'IP:127.0.0.1'."""
    ca_cert, ca_key = ca
    key, csr, cert = (os.path.join(directory, f"{name}.{ext}") for ext in ("key", "csr", "pem"))
    ext = os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/CN={name}", cwd=directory)
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "2", "-extfile", ext, cwd=directory)
    return cert, key


def https_request(address, target, context):
    """GET over TLS on a new connection: (status, body)."""
    connection = http.client.HTTPSConnection(address[0], address[1], timeout=10, context=context)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def https_get(address, target, ca_file, minimum=None, maximum=None):
    context = ssl.create_default_context(cafile=ca_file)
    if minimum:
        context.minimum_version = minimum
    if maximum:
        context.maximum_version = maximum
    return https_request(address, target, context)


class TlsListener(harness.IntegrationTestCase):
    """Devices speak HTTPS to the proxy; the upstream is plain scepserver."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = make_ca(cls.workdir, "device-facing-ca")
        cert, key = make_server_cert(cls.workdir, "proxy", cls.ca, "IP:127.0.0.1,DNS:localhost")
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        challenge_file = cls.write_file("challenge", CHALLENGE)
        config = proxy_config(cls.workdir, [harness.Profile("demo", cls.scepserver.url,
                                                            challenge_file=challenge_file)])
        config = config.replace('  listen: "127.0.0.1:0"\n',
                                f'  listen: "127.0.0.1:0"\n  tls: {{ cert_file: {cert}, key_file: {key} }}\n', 1)
        cls.proxy = cls.start_proxy(config)
        cls.token = cls.proxy.issue_token("demo", "device-tls")["token"]

    def test_https_answers_are_the_upstreams(self):
        status, body = https_get(self.proxy.address, f"/scep/{self.token}?operation=GetCACaps", self.ca[0])
        self.assertEqual(status, 200, body)
        direct = http_get(("127.0.0.1", self.scepserver.port), "/scep?operation=GetCACaps")
        self.assertEqual(body, direct.body)

    def test_tls_1_3_and_1_2_are_accepted_1_1_is_not(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version):
                status, _ = https_get(self.proxy.address, f"/scep/{self.token}?operation=GetCACaps", self.ca[0],
                                      minimum=version, maximum=version)
                self.assertEqual(status, 200)
        context = ssl.create_default_context(cafile=self.ca[0])
        try:
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            self.skipTest("this Python/OpenSSL can't even offer TLS 1.1")
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            https_request(self.proxy.address, f"/scep/{self.token}?operation=GetCACaps", context)

    def s_client(self, *args):
        """openssl s_client sending one GetCACaps; its whole output (the handshake summary and the answer).
        -ign_eof: read until the proxy closes (Connection: close), not just until our input ends."""
        host, port = self.proxy.address
        request = f"GET /scep/{self.token}?operation=GetCACaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        result = subprocess.run([Tools.openssl, "s_client", "-connect", f"{host}:{port}", "-CAfile", self.ca[0],
                                 "-verify_return_error", "-ign_eof", *args], input=request, capture_output=True, text=True,
                                timeout=60, cwd=self.workdir)
        return result.stdout + result.stderr

    def test_openssl_s_client_tls1_1_is_refused_tls1_2_and_tls1_3_succeed(self):
        for version, cipher in (("-tls1_2", "New, TLSv1.2, Cipher is ECDHE-"), ("-tls1_3", "New, TLSv1.3, Cipher is TLS_")):
            with self.subTest(version):
                output = self.s_client(version)
                self.assertIn(cipher, output)
                self.assertIn("HTTP/1.1 200", output)
        # SECLEVEL=0 lets this client offer TLS 1.1 whatever the local policy: the refusal is the proxy's.
        output = self.s_client("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertIn("alert protocol version", output)
        self.assertNotIn("HTTP/1.1", output)

    def test_openssl_s_client_resumed_session_is_reported_as_reused(self):
        for version in ("-tls1_2", "-tls1_3"):
            with self.subTest(version):
                session = os.path.join(self.workdir, f"session{version}.pem")
                first = self.s_client(version, "-sess_out", session)
                self.assertRegex(first, r"\nNew, TLSv1\.[23]")
                self.assertTrue(os.path.getsize(session) > 0, "no session ticket was saved")
                second = self.s_client(version, "-sess_in", session)
                self.assertRegex(second, r"\nReused, TLSv1\.[23]")
                self.assertIn("HTTP/1.1 200", second)

    def test_plain_http_on_the_tls_port_gets_no_answer_and_the_proxy_carries_on(self):
        response = harness.raw_exchange(self.proxy.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
        self.assertIsNone(response.status)
        self.assertTrue(self.proxy.alive())
        status, _ = https_get(self.proxy.address, f"/scep/{self.token}?operation=GetCACaps", self.ca[0])
        self.assertEqual(status, 200)

    def test_scepclient_enrolls_over_https(self):
        token = self.proxy.issue_token("demo", "device-tls-enroll")["token"]
        host, port = self.proxy.address
        os.environ["SSL_CERT_FILE"] = self.ca[0]  # Go's TLS trusts this file instead of the system store
        try:
            result = enroll(self.workdir, f"https://{host}:{port}/scep/{token}", CHALLENGE, "tls-device")
        finally:
            del os.environ["SSL_CERT_FILE"]
        self.assertEqual(result.returncode, 0, result.output)
        self.assertIsNotNone(result.certificate, result.output)


def make_client_cert(directory, name, ca):
    """A client certificate signed by `ca`."""
    ca_cert, ca_key = ca
    key, csr, cert = (os.path.join(directory, f"{name}.{ext}") for ext in ("key", "csr", "pem"))
    ext = os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/CN={name}", cwd=directory)
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "2", "-extfile", ext, cwd=directory)
    return cert, key


class TlsAdminListener(harness.IntegrationTestCase):
    """The admin API over TLS with required client certificates (mTLS), as the MDM calls it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server_ca = make_ca(cls.workdir, "admin-server-ca")
        cls.client_ca = make_ca(cls.workdir, "mdm-client-ca")
        cls.stranger_ca = make_ca(cls.workdir, "stranger-ca")
        cert, key = make_server_cert(cls.workdir, "admin", cls.server_ca, "IP:127.0.0.1")
        cls.mdm_cert = make_client_cert(cls.workdir, "mdm", cls.client_ca)
        cls.stranger_cert = make_client_cert(cls.workdir, "stranger", cls.stranger_ca)
        cls.bearer = uuid.uuid4().hex + uuid.uuid4().hex
        token_file = cls.write_file("admin.token", cls.bearer)
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        config = proxy_config(cls.workdir, [harness.Profile("demo", cls.scepserver.url)], admin_token_file=token_file)
        config = config.replace(f"  bearer_token_file: {token_file}\n",
                                f"  bearer_token_file: {token_file}\n"
                                f"  tls: {{ cert_file: {cert}, key_file: {key}, client_ca_file: {cls.client_ca[0]} }}\n")
        cls.proxy = cls.start_proxy(config)
        cls.admin = cls.proxy.listener_address("admin")

    def admin_get(self, client_cert, bearer):
        context = ssl.create_default_context(cafile=self.server_ca[0])
        if client_cert:
            context.load_cert_chain(*client_cert)
        connection = http.client.HTTPSConnection(self.admin[0], self.admin[1], timeout=10, context=context)
        try:
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            connection.request("GET", "/api/v1/devices/some-device", headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("WWW-Authenticate"), response.read()
        finally:
            connection.close()

    def test_the_mdm_with_its_certificate_and_token_gets_through(self):
        status, _, body = self.admin_get(self.mdm_cert, self.bearer)
        self.assertIn(status, (200, 404), body)  # an unknown device is a 404, not a refusal

    def test_the_right_certificate_without_the_token_gets_401(self):
        status, challenge, _ = self.admin_get(self.mdm_cert, None)
        self.assertEqual(status, 401)
        self.assertEqual(challenge, "Bearer")

    def s_client(self, *args):
        """openssl s_client with the MDM's certificate sending one GET; its whole output."""
        host, port = self.admin
        request = (f"GET /api/v1/devices/some-device HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.bearer}\r\n"
                   "Connection: close\r\n\r\n")
        result = subprocess.run([Tools.openssl, "s_client", "-connect", f"{host}:{port}", "-CAfile", self.server_ca[0],
                                 "-cert", self.mdm_cert[0], "-key", self.mdm_cert[1], "-verify_return_error",
                                 "-ign_eof", *args], input=request, capture_output=True, text=True, timeout=60,
                                cwd=self.workdir)
        return result.stdout + result.stderr

    def test_the_mdm_resumes_its_tls_1_2_and_1_3_sessions(self):
        # Client certificates required and no session id context: OpenSSL fails a TLS 1.2
        # resumption with SESSION_ID_CONTEXT_UNINITIALIZED instead of resuming.
        for version in ("-tls1_2", "-tls1_3"):
            with self.subTest(version):
                session = os.path.join(self.workdir, f"admin-session{version}.pem")
                first = self.s_client(version, "-sess_out", session)
                self.assertRegex(first, r"\nNew, TLSv1\.[23]")
                self.assertTrue(os.path.getsize(session) > 0, "no session ticket was saved")
                second = self.s_client(version, "-sess_in", session)
                self.assertRegex(second, r"\nReused, TLSv1\.[23]")
                self.assertRegex(second, r"HTTP/1\.1 (200|404)")
                self.assertNotIn("session id context uninitialized", second)

    def test_no_or_a_foreign_client_certificate_fails_the_handshake(self):
        for cert in (None, self.stranger_cert):
            with self.subTest(cert=cert):
                # TLS 1.3 reports a refused client certificate after the handshake, on the first read.
                with self.assertRaises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, OSError)):
                    self.admin_get(cert, self.bearer)
        self.assertTrue(self.proxy.alive())


class TlsUpstream(harness.IntegrationTestCase):
    """The proxy speaks HTTPS to the upstream (as to a real NDES), verifying its certificate."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = make_ca(cls.workdir, "ndes-ca")
        cls.other_ca = make_ca(cls.workdir, "someone-elses-ca")
        cert, key = make_server_cert(cls.workdir, "ndes", cls.ca, "IP:127.0.0.1")
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        cls.upstream = cls.start_upstream(forward_to=f"127.0.0.1:{cls.scepserver.port}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        cls.upstream._server.socket = context.wrap_socket(cls.upstream._server.socket, server_side=True)
        https_url = f"https://127.0.0.1:{cls.upstream.port}/scep"
        by_name_url = f"https://localhost:{cls.upstream.port}/scep"   # the certificate only names 127.0.0.1
        challenge_file = cls.write_file("challenge", CHALLENGE)
        config = proxy_config(cls.workdir, [
            harness.Profile("good", https_url, challenge_file=challenge_file),
            harness.Profile("wrongca", https_url),
            harness.Profile("wrongname", by_name_url),
        ])
        config = config.replace(f'      - url: "{https_url}"\n',
                                f'      - url: "{https_url}"\n    tls: {{ ca_file: {cls.ca[0]} }}\n', 1)
        config = config.replace("  wrongca:\n    upstreams:\n" f'      - url: "{https_url}"\n',
                                "  wrongca:\n    upstreams:\n" f'      - url: "{https_url}"\n'
                                f"    tls: {{ ca_file: {cls.other_ca[0]} }}\n")
        config = config.replace(f'      - url: "{by_name_url}"\n',
                                f'      - url: "{by_name_url}"\n    tls: {{ ca_file: {cls.ca[0]} }}\n')
        cls.proxy = cls.start_proxy(config)

    def test_verified_upstream_serves_and_enrolls(self):
        token = self.proxy.issue_token("good", "device-https-upstream")["token"]
        response = http_get(self.proxy.address, f"/scep/{token}?operation=GetCACert")
        self.assertEqual(response.status, 200, response.body)
        direct = http_get(("127.0.0.1", self.scepserver.port), "/scep?operation=GetCACert")
        self.assertEqual(response.body, direct.body)
        result = enroll(self.workdir, self.proxy.scep_url(token), CHALLENGE, "https-upstream-device")
        self.assertEqual(result.returncode, 0, result.output)

    def test_untrusted_or_misnamed_upstream_is_refused(self):
        for profile in ("wrongca", "wrongname"):
            with self.subTest(profile=profile):
                token = self.proxy.issue_token(profile, f"device-{profile}")["token"]
                response = http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps")
                self.assertEqual(response.status, 502, response.body)
                entry = self.proxy.wait_for_request_log(token=harness.token_id(token), op="GetCACaps")
                self.assertEqual(entry.get("reason"), "upstream_tls_error")
        self.assertTrue(self.proxy.alive())


if __name__ == "__main__":
    harness.main()
