#!/usr/bin/env python3
# Fake NDES mscep_admin for integration tests: serves the NDES page fixtures behind Basic or NTLMv2 auth (verified), over HTTP or HTTPS.
"""The URL path picks how the fake authenticates and what it answers, so one fake serves
every profile of a test config:

    /{auth}/{mode}/certsrv/mscep_admin/        auth: basic | ntlm

    mode                     answer (after successful authentication)
    password                 200, the UTF-16LE page (no BOM) with a fresh 16-hex-digit password
    password-bom             the same with a BOM
    password-utf8            the same re-encoded as UTF-8
    cache_full               200, "The password cache is full."
    insufficient_permission  200, "You do not have sufficient permission to enroll with SCEP."
    garbage                  200, bytes that are no mscep_admin page
    thumbprint_only          200, the password page without its password paragraph
    stall                    no answer until released (or MAX_STALL_SECONDS)
    error                    500

Wrong credentials get 401, as IIS answers. NTLM is verified for real: the fake sends a
Type-2 challenge on the connection and checks the client's NTLMv2 response against the
configured password (NTOWFv2 = HMAC-MD5(MD4(password), UPPER(user) + domain)); any
other Type-3 (wrong password, NTLMv1, a challenge from another connection) gets 401.

In a test (in-process, threads):
    ndes = FakeNdes(username="CORP\\\\svc-ndes", password="P@ss").start()
    ndes.url("ntlm", "password")      -> http://127.0.0.1:PORT/ntlm/password/certsrv/mscep_admin/
    ndes.issued_passwords()           -> every password served, in order
    ndes.fetch_count("stall")         -> authenticated requests seen per mode
    ndes.release_stalled(); ndes.stop()

Standalone: fake_ndes.py --username 'CORP\\svc' --password-file F [--port N]
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import os
import secrets
import ssl
import struct
import sys
import threading

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "proxy", "challenge", "data")
FIXTURE_PASSWORD = "5A0F2C9E71B3D846"   # the password written in the fixtures, replaced per fetch
MAX_STALL_SECONDS = 120                 # a forgotten stall never holds a thread for ever
PASSWORD_MODES = {"password": "password.utf16le.html", "password-bom": "password.utf16le-bom.html",
                  "password-utf8": "password.utf8.html"}
PAGE_MODES = {"cache_full": "cache_full.utf16le.html",
              "insufficient_permission": "insufficient_permission.utf16le.html"}
MODES = set(PASSWORD_MODES) | set(PAGE_MODES) | {"garbage", "thumbprint_only", "stall", "error"}


# --- MD4 (RFC 1320) -----------------------------------------------------------
# NTLM's NT hash is MD4 of the UTF-16LE password. OpenSSL 3 (and so hashlib) no longer
# offers MD4 by default, hence this small pure-Python version.

def _rotl(x, n):
    x &= 0xFFFFFFFF
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


_MD4_ROUNDS = (
    # (function, additive constant, shift per step, message word order)
    (lambda x, y, z: (x & y) | (~x & z), 0, (3, 7, 11, 19), range(16)),
    (lambda x, y, z: (x & y) | (x & z) | (y & z), 0x5A827999, (3, 5, 9, 13),
     (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)),
    (lambda x, y, z: x ^ y ^ z, 0x6ED9EBA1, (3, 9, 11, 15),
     (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)),
)


def md4(data):
    message = bytearray(data) + b"\x80"
    message += b"\x00" * ((56 - len(message)) % 64)
    message += struct.pack("<Q", (8 * len(data)) & 0xFFFFFFFFFFFFFFFF)
    state = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
    for offset in range(0, len(message), 64):
        words = struct.unpack("<16I", message[offset:offset + 64])
        a, b, c, d = state
        for function, constant, shifts, order in _MD4_ROUNDS:
            for step, k in enumerate(order):
                # Each step updates one register; the registers then rotate roles (a, b, c, d) -> (d, a, b, c).
                a, b, c, d = d, _rotl(a + function(b, c, d) + words[k] + constant, shifts[step % 4]), b, c
        state = tuple((s + v) & 0xFFFFFFFF for s, v in zip(state, (a, b, c, d)))
    return struct.pack("<4I", *state)


# --- NTLM (MS-NLMP), the server's side ---------------------------------------

NTLMSSP_SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE_UNICODE = 0x00000001
REQUEST_TARGET = 0x00000004
NEGOTIATE_NTLM = 0x00000200
NEGOTIATE_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000   # libcurl answers with NTLMv2 when this is set
NEGOTIATE_TARGET_INFO = 0x00800000


def ntowf_v2(password, user, domain):
    """NTOWFv2: HMAC-MD5 keyed with the NT hash (MD4 of the UTF-16LE password) over UPPER(user) + domain."""
    nt_hash = md4(password.encode("utf-16-le"))
    return hmac.new(nt_hash, (user.upper() + domain).encode("utf-16-le"), hashlib.md5).digest()


def _av_pair(av_id, value):
    return struct.pack("<HH", av_id, len(value)) + value


def challenge_message(server_challenge, domain, computer):
    """Type 2 (CHALLENGE_MESSAGE): our flags, the 8-byte server challenge and target info."""
    target_name = domain.encode("utf-16-le")
    target_info = (_av_pair(2, domain.encode("utf-16-le"))       # MsvAvNbDomainName
                   + _av_pair(1, computer.encode("utf-16-le"))   # MsvAvNbComputerName
                   + _av_pair(0, b""))                           # MsvAvEOL
    flags = (NEGOTIATE_UNICODE | REQUEST_TARGET | NEGOTIATE_NTLM | NEGOTIATE_ALWAYS_SIGN | TARGET_TYPE_DOMAIN
             | NEGOTIATE_EXTENDED_SESSIONSECURITY | NEGOTIATE_TARGET_INFO)
    header_length = 48
    return (NTLMSSP_SIGNATURE + struct.pack("<I", 2)
            + struct.pack("<HHI", len(target_name), len(target_name), header_length)
            + struct.pack("<I", flags) + server_challenge + b"\x00" * 8
            + struct.pack("<HHI", len(target_info), len(target_info), header_length + len(target_name))
            + target_name + target_info)


def _field(message, offset):
    """A security buffer (length, max length, offset) at `offset` of the message."""
    length, _, start = struct.unpack_from("<HHI", message, offset)
    if start + length > len(message):
        raise ValueError("security buffer outside the message")
    return message[start:start + length]


def verify_authenticate_message(message, server_challenge, username, password):
    """Type 3 (AUTHENTICATE_MESSAGE): True only for an NTLMv2 response computed from
    `password` for this server challenge, by the configured DOMAIN\\user."""
    if len(message) < 64 or not message.startswith(NTLMSSP_SIGNATURE) or struct.unpack_from("<I", message, 8)[0] != 3:
        return False
    flags = struct.unpack_from("<I", message, 60)[0]
    encoding = "utf-16-le" if flags & NEGOTIATE_UNICODE else "latin-1"
    nt_response = _field(message, 20)
    domain = _field(message, 28).decode(encoding, "replace")
    user = _field(message, 36).decode(encoding, "replace")
    expected_domain, _, expected_user = username.rpartition("\\")
    if user.lower() != expected_user.lower() or domain.upper() != expected_domain.upper():
        return False
    if len(nt_response) <= 24:      # 24 bytes is NTLMv1: not accepted
        return False
    # NTLMv2 response = NTProofStr (16 bytes) + the client's blob (timestamp, client challenge, target info).
    proof, blob = nt_response[:16], nt_response[16:]
    expected = hmac.new(ntowf_v2(password, user, domain), server_challenge + blob, hashlib.md5).digest()
    return hmac.compare_digest(proof, expected)


# --- the server ---------------------------------------------------------------

class FakeNdes:
    """mscep_admin on 127.0.0.1:<kernel-chosen port>. tls: (cert_file, key_file, client_ca_file or None)."""

    def __init__(self, username, password, tls=None, computer="NDES"):
        self.username = username
        self.password = password
        self.tls = tls
        self.computer = computer
        self._lock = threading.Lock()
        self._issued = []
        self._fetches = {}
        self._stall_released = threading.Event()
        self._server = None
        self._thread = None

    # lifecycle

    def start(self):
        context = None
        if self.tls:
            cert_file, key_file, client_ca_file = self.tls
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            if client_ca_file:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(client_ca_file)
        self._server = _Server(("127.0.0.1", 0), _make_handler(self), context)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stall_released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self):
        return self._server.server_address[1]

    def url(self, auth, mode):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{auth}/{mode}/certsrv/mscep_admin/"

    # what tests look at

    def issued_passwords(self):
        with self._lock:
            return list(self._issued)

    def fetch_count(self, mode):
        """Authenticated requests seen for `mode`."""
        with self._lock:
            return self._fetches.get(mode, 0)

    def release_stalled(self):
        self._stall_released.set()

    # used by the handler

    def _count(self, mode):
        with self._lock:
            self._fetches[mode] = self._fetches.get(mode, 0) + 1

    def _page(self, mode):
        """(status, body) for an authenticated request, or None to stall."""
        if mode in PASSWORD_MODES:
            password = secrets.token_hex(8).upper()
            with self._lock:
                self._issued.append(password)
            page = _read_fixture(PASSWORD_MODES[mode])
            encoding = "utf-8" if mode == "password-utf8" else "utf-16-le"
            return 200, page.replace(FIXTURE_PASSWORD.encode(encoding), password.encode(encoding))
        if mode in PAGE_MODES:
            return 200, _read_fixture(PAGE_MODES[mode])
        if mode == "thumbprint_only":
            text = _read_fixture("password.utf8.html").decode("utf-8")
            text = text[:text.index("<P> The enrollment challenge password is:")] + "</Font></Body></HTML>"
            return 200, text.encode("utf-16-le")
        if mode == "garbage":
            return 200, b"\x00\x01\xfe\xffnot an mscep_admin page\r\n" + bytes(range(256))
        if mode == "error":
            return 500, b"<html>Internal Server Error</html>"
        return None  # stall


def _read_fixture(name):
    with open(os.path.join(FIXTURE_DIR, name), "rb") as f:
        return f.read()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, tls_context):
        self.tls_context = tls_context
        super().__init__(address, handler)

    def get_request(self):
        sock, address = self.socket.accept()
        if self.tls_context is not None:
            # The handshake runs in the connection's thread (on first read), not in accept().
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address):
        pass  # failed handshakes and resets are part of the tests


def _make_handler(ndes):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # NTLM needs the connection kept between its messages
        disable_nagle_algorithm = True

        def setup(self):
            super().setup()
            self.server_challenge = None   # NTLM: the Type-2 challenge sent on this connection

        def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
            pass

        def do_GET(self):
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) != 4 or parts[0] not in ("basic", "ntlm") or parts[1] not in MODES \
                    or parts[2:] != ["certsrv", "mscep_admin"]:
                self._send(404, b"not found")
                return
            auth, mode = parts[0], parts[1]
            if not (self._basic_ok() if auth == "basic" else self._ntlm_ok()):
                return  # the 401 (or Type-2) went out
            ndes._count(mode)
            answer = ndes._page(mode)
            if answer is None:
                ndes._stall_released.wait(MAX_STALL_SECONDS)
                self.close_connection = True
                return
            self._send(*answer)

        def _basic_ok(self):
            header = self.headers.get("Authorization", "")
            expected = base64.b64encode(f"{ndes.username}:{ndes.password}".encode()).decode()
            if header.startswith("Basic ") and hmac.compare_digest(header[6:].strip(), expected):
                return True
            self._send(401, b"401 - Unauthorized", [("WWW-Authenticate", 'Basic realm="ndes"')])
            return False

        def _ntlm_ok(self):
            header = self.headers.get("Authorization", "")
            token = header[5:].strip() if header.startswith("NTLM ") else ""
            try:
                message = base64.b64decode(token, validate=True) if token else b""
            except ValueError:
                message = b""
            kind = struct.unpack_from("<I", message, 8)[0] if len(message) >= 12 else 0
            if kind == 1:
                self.server_challenge = secrets.token_bytes(8)
                domain = ndes.username.rpartition("\\")[0] or "WORKGROUP"
                type2 = base64.b64encode(challenge_message(self.server_challenge, domain, ndes.computer)).decode()
                self._send(401, b"", [("WWW-Authenticate", f"NTLM {type2}")])
                return False
            if kind == 3 and self.server_challenge is not None:
                challenge, self.server_challenge = self.server_challenge, None   # one use
                try:
                    if verify_authenticate_message(message, challenge, ndes.username, ndes.password):
                        return True
                except (ValueError, struct.error):
                    pass
            # IIS offers Negotiate too; libcurl told to use NTLM picks NTLM.
            self._send(401, b"401 - Unauthorized", [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")])
            return False

        def _send(self, status, body, headers=()):
            self.send_response(status)
            self.send_header("Content-Type", "text/html")   # NDES sends no charset
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main():
    parser = argparse.ArgumentParser(description="fake NDES mscep_admin (Basic and NTLMv2)")
    parser.add_argument("--username", required=True, help="DOMAIN\\user")
    parser.add_argument("--password-file", required=True)
    args = parser.parse_args()
    with open(args.password_file) as f:
        password = f.readline().rstrip("\r\n")
    ndes = FakeNdes(args.username, password).start()
    print(ndes.url("ntlm", "password"), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        ndes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
