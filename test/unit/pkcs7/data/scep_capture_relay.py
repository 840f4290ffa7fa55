#!/usr/bin/env python3
# Test-fixture capture: a tiny HTTP relay that forwards SCEP requests to a real server and saves each body.
"""Usage: scep_capture_relay.py LISTEN_PORT UPSTREAM_PORT OUT_DIR [hide-post]

Every exchange N is saved as OUT_DIR/NN-<operation>-request.bin (the POST body,
or for GET the raw, still percent-encoded `message` query value) and
OUT_DIR/NN-<operation>-response.bin, with "STATUS Content-Type" in
OUT_DIR/NN-<operation>-response.type. With `hide-post` the relay removes
POSTPKIOperation and SCEPStandard from GetCACaps answers, so clients fall back to GET.
"""
import http.client
import http.server
import itertools
import os
import sys
import threading
import urllib.parse

LISTEN_PORT, UPSTREAM_PORT, OUT_DIR = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
HIDE_POST = len(sys.argv) > 4 and sys.argv[4] == "hide-post"
POST_CAPABILITIES = (b"POSTPKIOperation", b"SCEPStandard")  # either one obliges a client to POST
counter = itertools.count(1)
counter_lock = threading.Lock()


class Relay(http.server.BaseHTTPRequestHandler):
    def _relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = urllib.parse.urlsplit(self.path).query
        # keep_blank_values and no '+' to space: read the raw value, as a proxy would.
        params = dict(p.split("=", 1) if "=" in p else (p, "") for p in query.split("&") if p)
        operation = params.get("operation", "unknown")
        with counter_lock:
            number = next(counter)
        prefix = os.path.join(OUT_DIR, "%02d-%s" % (number, operation))
        with open(prefix + "-request.bin", "wb") as f:
            f.write(body if self.command == "POST" else params.get("message", "").encode())

        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream.request(self.command, self.path, body=body if body else None, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        if HIDE_POST and operation == "GetCACaps":
            payload = b"\n".join(l for l in payload.split(b"\n") if l.strip() not in POST_CAPABILITIES)
        with open(prefix + "-response.bin", "wb") as f:
            f.write(payload)
        with open(prefix + "-response.type", "w") as f:
            f.write("%d %s\n" % (answer.status, answer.getheader("Content-Type", "")))

        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _relay
    do_POST = _relay

    def log_message(self, fmt, *args):
        sys.stderr.write("relay: " + (fmt % args) + "\n")


http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Relay).serve_forever()
