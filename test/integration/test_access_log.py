#!/usr/bin/env python3
# Integration: one access log line per request with the contract's keys and the 8-hex token id, never the token; SIGTERM exits 0.
import uuid

import harness
from harness import Profile, enroll, http_get, proxy_config

CHALLENGE = "accesslog-" + uuid.uuid4().hex[:12]
ACCESS_LOG_KEYS = {"listener", "client", "token", "profile", "op", "status", "reason",
                   "bytes_in", "bytes_out", "upstream_ms", "total_ms"}


def spellings(guid):
    """Ways a token could leak into a log: as issued, upper case, without dashes, raw hex."""
    compact = guid.replace("-", "")
    return {guid, guid.upper(), compact, compact.upper()}


class AccessLog(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.scepserver.url, challenge_file=challenge_file)]))

    def test_access_log_has_token_id_never_token_and_sigterm_exits_cleanly(self):
        issued = self.proxy.issue_token("demo", "device-log")
        token = issued["token"]
        unknown = str(uuid.uuid4())

        self.assertEqual(http_get(self.proxy.address, f"/scep/{token}?operation=GetCACaps").status, 200)
        caps_entry = self.proxy.wait_for_request_log(token=harness.token_id(token), op="GetCACaps")
        self.assertEqual(http_get(self.proxy.address, f"/scep/{unknown}?operation=GetCACaps").status, 403)
        unknown_entry = self.proxy.wait_for_request_log(token=harness.token_id(unknown))
        result = enroll(self.workdir, self.proxy.scep_url(token), issued["challenge"], "device-log")
        self.assertEqual(result.returncode, 0, result.output)
        # scepclient: GetCACert, GetCACaps, PKIOperation; this proxy served nothing else.
        self.proxy.wait_for_request_log(token=harness.token_id(token), op="GetCACert")
        self.proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation")
        entries = self.proxy.request_log()
        self.assertEqual(len(entries), 5, entries)

        for entry in entries:
            self.assertLessEqual(ACCESS_LOG_KEYS, set(entry), entry)
            self.assertEqual(entry["listener"], "scep")
        self.assertEqual(caps_entry["token"], harness.token_id(token))
        self.assertEqual(caps_entry["profile"], "demo")
        self.assertEqual(caps_entry["op"], "GetCACaps")
        self.assertEqual(caps_entry["status"], "200")
        self.assertEqual(caps_entry["client"].rpartition(":")[0], "127.0.0.1")

        self.assertEqual(unknown_entry["status"], "403")
        self.assertEqual(unknown_entry["reason"], "token_unknown")
        self.assertEqual(unknown_entry["op"], "GetCACaps")

        pki = [e for e in entries if e["op"] == "PKIOperation"]
        self.assertEqual(len(pki), 1, entries)
        self.assertEqual(pki[0]["status"], "200")
        self.assertEqual(pki[0]["token"], harness.token_id(token))
        self.assertGreater(int(pki[0]["bytes_in"]), 0)
        self.assertGreater(int(pki[0]["bytes_out"]), 0)

        exit_code, in_time = self.proxy.stop()
        self.assertTrue(in_time, f"scepproxy did not exit within {harness.STOP_TIMEOUT}s of SIGTERM")
        self.assertEqual(exit_code, 0)

        output = self.proxy.output()
        for guid in (token, unknown):
            for spelling in spellings(guid):
                self.assertNotIn(spelling, output, "a token appears in the proxy's output")
        self.assertNotIn(CHALLENGE, output, "the challenge password appears in the proxy's output")
        self.assertNotIn("device-log", output, "the device id appears in the proxy's output")


if __name__ == "__main__":
    harness.main()
