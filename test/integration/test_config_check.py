#!/usr/bin/env python3
# Integration: `scepproxy check -c FILE` accepts a good config and reports bad keys and values as FILE:LINE:COL: key: message;
# settings that weaken security are `warning:` lines (exit 0) and `insecure_setting` log lines at start and reload.
import os
import re
import signal
import subprocess

import harness
from harness import Profile, proxy_config

ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<key>[^:\s]+): (?P<message>.+)$")
WARNING_LINE = re.compile(r"^warning: (?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<key>[^:\s]+): (?P<message>.+)$")


class ConfigCheck(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        challenge_file = cls.write_secret("challenge", "static-secret\n")
        cls.good_text = proxy_config(cls.workdir, [
            Profile("demo", "http://127.0.0.1:9/scep", challenge_file=challenge_file)])

    @classmethod
    def write_secret(cls, name, text, mode=0o640):
        path = cls.write_file(name, text)
        os.chmod(path, mode)
        return path

    def check(self, text, name):
        path = self.write_file(name, text)
        result = subprocess.run([harness.Tools.scepproxy, "check", "-c", path],
                                capture_output=True, text=True, timeout=harness.CLI_TIMEOUT)
        return path, result

    def broken(self, old, new):
        """The good config with the first occurrence of `old` replaced by `new` (which must be there)."""
        self.assertIn(old, self.good_text)
        return self.good_text.replace(old, new, 1)

    @staticmethod
    def position_of(text, needle, offset_in_needle=0):
        """1-based (line, column) where `needle` (plus offset) starts in text."""
        index = text.index(needle) + offset_in_needle
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        return line, column

    def assertReported(self, name, text, key_suffix, position):
        path, result = self.check(text, name)
        self.assertEqual(result.returncode, 1, f"stdout: {result.stdout}\nstderr: {result.stderr}")
        errors = [ERROR_LINE.match(line) for line in result.stderr.splitlines()]
        errors = [m for m in errors if m]
        self.assertTrue(errors, f"no FILE:LINE:COL: key: message line in stderr:\n{result.stderr}")
        matching = [m for m in errors if m["file"] == path and m["key"].endswith(key_suffix)]
        self.assertTrue(matching, f"no error for key *{key_suffix} in:\n{result.stderr}")
        self.assertEqual((int(matching[0]["line"]), int(matching[0]["col"])), position, result.stderr)
        self.assertNotIn(": ok", result.stdout)

    def assertWarnings(self, name, text, expected):
        """`check` exits 0 and prints one warning line per key of `expected` ({key: (needle, words)}),
        at the position of needle in text, its message containing each of words, and no other."""
        path, result = self.check(text, name)
        self.assertEqual(result.returncode, 0, f"stdout: {result.stdout}\nstderr: {result.stderr}")
        self.assertEqual(result.stdout.strip(), f"{path}: ok")
        lines = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
        warnings = {}
        for line in lines:
            match = WARNING_LINE.match(line)
            self.assertTrue(match, f"not warning: FILE:LINE:COL: key: message: {line}")
            self.assertEqual(match["file"], path)
            warnings[match["key"]] = match
        self.assertEqual(sorted(warnings), sorted(expected), result.stderr)
        for key, (needle, words) in expected.items():
            found = warnings[key]
            self.assertEqual((int(found["line"]), int(found["col"])), self.position_of(text, needle), found[0])
            for word in words:
                self.assertIn(word, found["message"])

    def test_good_config_is_ok(self):
        path, result = self.check(self.good_text, "good.yaml")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), f"{path}: ok")
        self.assertNotIn("warning:", result.stderr)

    def test_settings_that_weaken_security_are_warnings(self):
        admin_token = self.write_secret("admin.token", "admin-secret\n", 0o644)
        conninfo = self.write_secret("pg.conninfo", "host=db.example.invalid dbname=scep sslmode=require\n", 0o600)
        password = self.write_secret("ndes.password", "svc-password\n", 0o600)
        text = proxy_config(self.workdir, [
            Profile("plain", "https://127.0.0.1:9/scep", lines=("tls: { verify: false }",),
                    challenge=f'{{ type: dynamic, url: "http://127.0.0.1:9/certsrv/mscep_admin/", '
                              f'auth: ntlm, username: svc, password_file: {password} }}')],
            store=["backend: postgres", f"postgres: {{ conninfo_file: {conninfo} }}"],
            admin_token_file=admin_token).replace('admin:\n  listen: "127.0.0.1:0"', 'admin:\n  listen: "0.0.0.0:9443"')
        self.assertIn('listen: "0.0.0.0:9443"', text)
        self.assertWarnings("insecure.yaml", text, {
            "admin.listen": ("listen: \"0.0.0.0:9443\"", ["not a loopback address", "admin.tls"]),
            "store.postgres.conninfo_file": ("conninfo_file", ["db.example.invalid", "sslmode=verify-full"]),
            "profiles.plain.challenge.url": ("url: \"http://127.0.0.1:9/certsrv", ["NTLM", "https://"]),
            "profiles.plain.tls.verify": ("verify: false", ["not checked", "tls.ca_file"]),
            "admin.bearer_token_file": ("bearer_token_file", ["mode 0644", "chmod 0640"]),
        })

    def test_webhook_token_over_http_is_a_warning(self):
        token = self.write_secret("webhook.token", "hook-secret\n", 0o600)
        text = self.broken("  backend: sqlite\n", "  backend: webhook\n  webhook:\n"
                           f'    url: "http://127.0.0.1:9/check"\n    bearer_token_file: {token}\n')
        self.assertWarnings("webhook.yaml", text, {
            "store.webhook.url": ('url: "http://127.0.0.1:9/check"', ["bearer token", "https://"])})
        safe = text.replace('url: "http://127.0.0.1:9/check"', 'url: "https://127.0.0.1:9/check"')
        self.assertWarnings("webhook_https.yaml", safe, {})

    def test_unknown_key_in_a_section(self):
        text = self.broken('  public_url: "http://127.0.0.1:8080"\n',
                           '  public_url: "http://127.0.0.1:8080"\n  listen_bakclog: 5\n')
        self.assertReported("unknown_scep_key.yaml", text, "listen_bakclog", self.position_of(text, "listen_bakclog"))

    def test_unknown_top_level_key(self):
        text = self.broken("workers: 2\n", "workers: 2\nworkerz: 3\n")
        self.assertReported("unknown_top_key.yaml", text, "workerz", self.position_of(text, "workerz"))

    def test_unknown_key_in_a_profile(self):
        text = self.broken("    timeout: 10s\n", "    timeout: 10s\n    tiemout: 10s\n")
        self.assertReported("unknown_profile_key.yaml", text, "tiemout", self.position_of(text, "tiemout"))

    def test_bad_duration_points_at_the_value(self):
        text = self.broken("    timeout: 10s\n", "    timeout: ten seconds\n")
        self.assertReported("bad_duration.yaml", text, "timeout", self.position_of(text, "ten seconds"))

    def test_bad_listen_address_points_at_the_value(self):
        text = self.broken('  listen: "127.0.0.1:0"', '  listen: "127.0.0.1:99999"')
        self.assertReported("bad_listen.yaml", text, "listen", self.position_of(text, '"127.0.0.1:99999"'))

    def test_bad_enum_in_flow_mapping_points_at_the_value(self):
        text = self.broken("{ type: static,", "{ type: magic,")
        self.assertReported("bad_enum.yaml", text, "type", self.position_of(text, "magic"))

    def test_bad_workers_points_at_the_value(self):
        text = self.broken("workers: 2\n", "workers: -3\n")
        self.assertReported("bad_workers.yaml", text, "workers", self.position_of(text, "-3"))

    def test_unknown_store_backend(self):
        text = self.broken("  backend: sqlite\n", "  backend: mysql\n")
        self.assertReported("bad_backend.yaml", text, "backend", self.position_of(text, "mysql"))

    def test_yaml_syntax_error_names_file_and_line(self):
        text = self.broken('  listen: "127.0.0.1:0"', '  listen: "127.0.0.1:0')
        path, result = self.check(text, "syntax.yaml")
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertRegex(result.stderr, re.escape(path) + r":\d+:\d+: ")

    def test_missing_file(self):
        missing = os.path.join(self.workdir, "does-not-exist.yaml")
        result = subprocess.run([harness.Tools.scepproxy, "check", "-c", missing],
                                capture_output=True, text=True, timeout=harness.CLI_TIMEOUT)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(missing, result.stderr)


class InsecureSettingsLogged(harness.IntegrationTestCase):
    """The daemon logs each warning as insecure_setting at start and again after a reload."""

    def test_insecure_settings_are_logged_at_start_and_reload(self):
        challenge_file = self.write_file("challenge", "static-secret\n")
        os.chmod(challenge_file, 0o644)
        proxy = self.start_proxy(proxy_config(self.workdir, [
            Profile("demo", "https://127.0.0.1:9/scep", lines=("tls: { verify: false }",),
                    challenge_file=challenge_file)]))
        expected = ["profiles.demo.tls.verify", "profiles.demo.challenge.password_file"]
        at_start = proxy.log_events("insecure_setting")
        self.assertEqual([fields.get("key") for fields in at_start], expected)
        self.assertIn("mode 0644", at_start[1].get("detail", ""))
        proxy.process.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: proxy.log_events("config_reloaded") or None, harness.START_TIMEOUT,
                           "config_reloaded")
        self.assertEqual([fields.get("key") for fields in proxy.log_events("insecure_setting")], expected * 2)
        self.assertTrue(proxy.alive())


if __name__ == "__main__":
    harness.main()
