#!/usr/bin/env python3
# Writes the hand-made fuzz seeds in test/fuzz/corpus/: HTTP requests (the probe matrix's cases included), upstream responses, message= values, configs, admin API requests, envelopes.
"""Usage: test/fuzz/make_seeds.py   (rewrites the seed files it owns; commit them with this script)

The request seeds take every case of test/integration/test_probe_matrix.py (PROBE_CASES), so
each smuggling probe is also a fuzz seed and a replay regression test. Seeds found by fuzzing
(libFuzzer names them by SHA-1) may be added to the same directories by hand; this script
only (re)writes the files named here.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
PKCS7_DATA = os.path.join(HERE, "..", "unit", "pkcs7", "data")
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_probe_matrix import PROBE_CASES, Probe  # noqa: E402

TOKEN = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
# A short DER-looking body: seeds stay small, so the fuzzer mutates the framing, not a certificate.
BODY = bytes.fromhex("308006092a864886f70d010702a0800000")


def read_data(name):
    with open(os.path.join(PKCS7_DATA, name), "rb") as f:
        return f.read()


def write(directory, name, data):
    os.makedirs(os.path.join(CORPUS, directory), exist_ok=True)
    with open(os.path.join(CORPUS, directory, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def request_seeds():
    probe = Probe(f"/scep/{TOKEN}/pkiclient.exe?operation=PKIOperation", BODY)
    seeds = {f"probe-{case.name}.http": case.build(probe) for case in PROBE_CASES}
    get = f"/scep/{TOKEN}?operation="
    seeds.update({
        "valid-post-content-length.http": probe.valid(),
        "valid-post-chunked.http": probe.head(b"Transfer-Encoding: chunked\r\n") + probe.chunked_body(),
        "valid-chunked-extension-trailer.http": probe.head(b"Transfer-Encoding: chunked\r\n")
        + b"4;name=value\r\n" + BODY[:4] + b"\r\n" + b"%x ; x\r\n" % (len(BODY) - 4) + BODY[4:]
        + b"\r\n0\r\nX-Trailer: t\r\n\r\n",
        "valid-get-caps.http": f"GET {get}GetCACaps HTTP/1.1\r\nHost: proxy.test\r\n\r\n",
        "valid-get-cacert.http": f"GET {get}GetCACert&message=ca HTTP/1.1\r\nHost: proxy.test:8080\r\n"
                                 "User-Agent: scepclient\r\nAccept: */*\r\n\r\n",
        "valid-get-pkioperation.http": f"GET {get}PKIOperation&message=MIIB%2Bg%3D%3D HTTP/1.1\r\n"
                                       "Host: [::1]:8080\r\n\r\n",
        "valid-head.http": f"HEAD {get}GetCACaps HTTP/1.1\r\nHost: proxy.test\r\n\r\n",
        "valid-expect-continue.http": probe.post(probe.cl(b"Expect: 100-continue\r\n")),
        "valid-leading-empty-lines.http": b"\r\n\r\n" + probe.valid(),
        "valid-http10.http": f"GET {get}GetCACaps HTTP/1.0\r\n\r\n",
        "valid-http10-keep-alive-pipelined.http": f"GET {get}GetCACaps HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                                  f"GET {get}GetCACert HTTP/1.0\r\n\r\n",
        "valid-pipelined-three.http": probe.valid() + f"GET {get}GetCACaps HTTP/1.1\r\nHost: a\r\n\r\n".encode()
        + probe.post(probe.cl(b"Connection: close\r\n")),
        "valid-empty-header-value.http": f"GET {get}GetCACaps HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ows: \t v \t\r\n\r\n",
    })
    for name, data in seeds.items():
        write("http_request", name, data)


def response_seeds():
    caps = b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n"
    cacert = read_data("getcacert-single.der")
    seeds = {
        "caps-content-length.http": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
        % len(caps) + caps,
        "cacert-iis.http": b"HTTP/1.1 200 OK\r\nCache-Control: private\r\nContent-Type: application/x-x509-ca-cert\r\n"
        b"Server: Microsoft-IIS/10.0\r\nX-Powered-By: ASP.NET\r\nContent-Length: %d\r\n\r\n" % len(cacert) + cacert,
        "chunked-extension-trailer.http": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nPOSTP\r\n0\r\nX-Checksum: abc\r\n\r\n",
        "until-close-http10.http": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + caps,
        "interim-100-then-200.http": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "interim-103-then-204.http": b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        "switching-101.http": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        "not-modified-304.http": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        "empty-200.http": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "no-reason.http": b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
        "keep-alive-http10.http": b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        "close-500.http": b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 5\r\n\r\nerror",
        "bytes-after-end.http": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
        "te-and-cl.http": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "chunk-size-0x.http": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n",
        "duplicate-cl.http": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        "truncated-body.http": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
        "bare-lf.http": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        "obs-fold.http": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    }
    for name, data in seeds.items():
        write("http_response", name, data)


def message_parameter_seeds():
    seeds = {
        "base64url-unpadded.txt": "MIIBCgKCAQEAq-_w",
        "base64-percent-escaped.txt": "MIIBCgKCAQEAq%2B%2Fw%3D%3D",
        "base64-lowercase-escapes.txt": "MIIBCgKCAQEAq%2b%2fw%3d%3d",
        "base64-raw-plus-slash.txt": "MIIBCgKCAQEAq+/w==",
        "space-for-plus.txt": "MIIBCgKCAQEAq /w==",
        "line-wrapped.txt": "MIIBCgKC%0D%0AAQEAq%2B%2Fw\r\n%3D%3D",
        "bad-escape.txt": "MIIB%G1",
        "data-after-padding.txt": "MIIB==AA",
        "only-line-breaks.txt": "%0D%0A\r\n",
    }
    for name, data in seeds.items():
        write("message_parameter", name, data)


def config_seeds():
    seeds = {
        "unknown-key-and-bad-values.yaml": "workers: many\nscep:\n  listen: \"0.0.0.0:99999\"\n  colour: blue\n"
                                           "limits: { max_headers: -1, header_timeout: 10 parsecs }\n",
        "two-documents.yaml": "workers: 1\n---\nworkers: 2\n",
        "anchors-and-aliases.yaml": "profiles:\n  a: &p\n    upstreams: [ { url: \"http://ndes/certsrv/mscep/mscep.dll\" } ]\n"
                                    "  b: *p\n  c: *p\n",
        "deep-nesting.yaml": "scep: " + "[" * 60 + "]" * 60 + "\n",
        "dynamic-challenge.yaml": "scep: { listen: \"127.0.0.1:0\", public_url: \"https://scep.test\" }\n"
                                  "profiles:\n  wifi:\n    upstreams:\n      - url: \"https://ndes/certsrv/mscep/mscep.dll\"\n"
                                  "    challenge: { type: dynamic, url: \"https://ndes/certsrv/mscep_admin/\", "
                                  "auth: ntlm, username: 'CORP\\svc', password_file: pass }\n",
        "tabs-and-bad-indent.yaml": "scep:\n\tlisten: x\n  public_url: y\n",
        "duplicate-keys.yaml": "workers: 1\nworkers: 2\n",
    }
    for name, data in seeds.items():
        write("config", name, data)


def admin_request_seeds():
    """First line "METHOD PATH", then the JSON body (fuzz_admin_request.cpp's input format)."""
    enroll = "POST /api/v1/enrollments\n"
    device = "PUT /api/v1/devices/dev%2F1\n"
    seeds = {
        "enrollment.txt": enroll + '{"profile": "wifi", "device_id": "d-1", "ttl": "30m"}',
        "enrollment-no-ttl.txt": enroll + '{"device_id":"d\\u00e9","profile":"wifi"}',
        "enrollment-duplicate-member.txt": enroll + '{"profile": "a", "profile": "b", "device_id": "d"}',
        "enrollment-unknown-member.txt": enroll + '{"profile": "a", "device_id": "d", "admin": true}',
        "enrollment-wrong-types.txt": enroll + '{"profile": 1, "device_id": ["d"], "ttl": 30}',
        "enrollment-trailing-data.txt": enroll + '{"profile": "a", "device_id": "d"} {}',
        "enrollment-nested.txt": enroll + '{"profile": ' + "[" * 40 + "]" * 40 + "}",
        "enrollment-nul-escape.txt": enroll + '{"profile": "a\\u0000b", "device_id": "\\ud800"}',
        "enrollment-bad-utf8.txt": (enroll + '{"profile": "\xff\xfe", "device_id": "d"}').encode("latin-1"),
        "device.txt": device + '{"enrolled": true, "compliant": false}',
        "device-missing-member.txt": device + '{"enrolled": true}',
        "device-number-bool.txt": device + '{"enrolled": 1, "compliant": 1e999999}',
        "get-enrollment.txt": "GET /api/v1/enrollments/6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b\n",
        "delete-enrollment.txt": "DELETE /api/v1/enrollments/%zz\n",
        "healthz.txt": "GET /healthz\n",
        "wrong-method.txt": "PATCH /api/v1/devices/x\n[]",
        "dot-segments.txt": "GET /api/v1/../v1/devices/a/b\n",
    }
    for name, data in seeds.items():
        write("admin_request", name, data)


def envelope_recipients_seeds():
    # The EnvelopedData inside real requests (and the CertRep to the device), as the fuzz target
    # also wraps its input in a SignedData: `openssl cms -verify -noverify` prints the content.
    for name in ("pkcsreq.der", "certpoll-for-pending.der", "certrep-success.der"):
        envelope = subprocess.run(
            ["openssl", "cms", "-verify", "-noverify", "-binary", "-inform", "DER",
             "-in", os.path.join(PKCS7_DATA, name)],
            check=True, capture_output=True).stdout
        write("envelope_recipients", "envelope-of-" + name, envelope)


def main():
    request_seeds()
    response_seeds()
    message_parameter_seeds()
    config_seeds()
    admin_request_seeds()
    envelope_recipients_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
