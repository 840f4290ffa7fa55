#!/usr/bin/env python3
# Integration: SIGHUP reloads under load (good, broken, restart-only keys, TLS certificate swap) and sd_notify messages.
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

import harness
import prometheus_text
from harness import CannedAnswer, Tools, http_get, json_request, parse_logfmt, proxy_config, wait_until
from load_clients import LoadClients
from test_tls import make_ca, make_server_cert

LOAD_SECONDS = 10.0
CAPS = b"POSTPKIOperation\nSHA-256\nAES\n"
CA_CERT = b"\x30\x03\x02\x01\x00"


def canned_upstream():
    return {"GetCACaps": CannedAnswer(200, "text/plain", CAPS),
            "GetCACert": CannedAnswer(200, "application/x-x509-ca-cert", CA_CERT)}


def reload_config_text(workdir, upstream_url, extra_profile=False, workers=2, tls=None, metrics=True):
    """Two-worker config, metrics on; CA answers never cached so that every request goes upstream
    (through the pools a reload replaces)."""
    profiles = [harness.Profile("demo", upstream_url)]
    if extra_profile:
        profiles.append(harness.Profile("second", upstream_url))
    text = proxy_config(workdir, profiles, metrics=metrics, store_cache_ttl="0s")
    text = text.replace("    timeout: 10s\n", "    timeout: 10s\n    ca_cache_ttl: 0s\n")
    text = text.replace("workers: 2\n", f"workers: {workers}\n", 1)
    if tls:
        text = text.replace('  listen: "127.0.0.1:0"\n',
                            f'  listen: "127.0.0.1:0"\n  tls: {{ cert_file: {tls[0]}, key_file: {tls[1]} }}\n', 1)
    return text


def log_events(proxy, event):
    return [fields for fields in map(parse_logfmt, proxy.output().splitlines()) if fields.get("event") == event]


def sighup_and_wait(proxy, done_event):
    """SIGHUP, then wait for one more `done_event` log line (config_reloaded or config_reload_rejected)."""
    before = len(log_events(proxy, done_event))
    proxy.process.send_signal(signal.SIGHUP)
    wait_until(lambda: len(log_events(proxy, done_event)) > before, 20, f"a new {done_event} line")
    return time.monotonic()


def reload_counts(proxy):
    family = prometheus_text.scrape(proxy.listener_address("metrics"))["scepproxy_config_reloads_total"]
    return family.value(result="success"), family.value(result="failure")


class ReloadUnderLoad(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upstream = cls.start_upstream(canned=canned_upstream())
        cls.proxy = cls.start_proxy(reload_config_text(cls.workdir, cls.upstream.url))
        cls.token = cls.proxy.issue_token("demo", "device-reload")["token"]

    def write_config(self, text):
        with open(self.proxy.config_path, "w") as f:
            f.write(text)

    def test_good_broken_and_restart_only_reloads_under_load_fail_no_request(self):
        targets = [f"/scep/{self.token}?operation=GetCACaps", f"/scep/{self.token}?operation=GetCACert"]
        success_before, failure_before = reload_counts(self.proxy)
        load = LoadClients(self.proxy.address, targets, clients=6, seconds=LOAD_SECONDS).start()
        try:
            time.sleep(1.5)
            # Good: a second profile. Its token is issued (the CLI reads the new file) before the
            # proxy has reloaded, so the proxy must refuse it first and serve it after.
            good = reload_config_text(self.workdir, self.upstream.url, extra_profile=True)
            self.write_config(good)
            second = self.proxy.issue_token("second", "device-second")["token"]
            before = http_get(self.proxy.address, f"/scep/{second}?operation=GetCACaps")
            self.assertEqual(before.status, 403, "the proxy served a profile it hasn't loaded yet")
            good_at = sighup_and_wait(self.proxy, "config_reloaded")
            # New connections land on either worker (SO_REUSEPORT): every one has switched.
            for _ in range(8):
                after = http_get(self.proxy.address, f"/scep/{second}?operation=GetCACaps")
                self.assertEqual(after.status, 200, after.body)

            time.sleep(1.5)
            # Broken: a bad duration on a known line. The old config (with `second`) stays.
            broken = good.replace("    timeout: 10s\n", "    timeout: 10 parsecs\n", 1)
            self.write_config(broken)
            broken_at = sighup_and_wait(self.proxy, "config_reload_rejected")
            failed = log_events(self.proxy, "config_reload_failed")
            self.assertTrue(failed, "no config_reload_failed line")
            line = next(i for i, text in enumerate(broken.splitlines(), 1) if "10 parsecs" in text)
            self.assertRegex(failed[-1]["detail"], rf"^{re.escape(self.proxy.config_path)}:{line}:\d+: "
                                                   r"profiles\.demo\.timeout: ")
            self.assertEqual(http_get(self.proxy.address, f"/scep/{second}?operation=GetCACaps").status, 200)

            time.sleep(1.5)
            # Restart-only: more workers. Applied except for that key, which a warning names.
            self.write_config(reload_config_text(self.workdir, self.upstream.url, extra_profile=True, workers=3))
            restart_at = sighup_and_wait(self.proxy, "config_reloaded")
            warning = log_events(self.proxy, "config_reload_needs_restart")
            self.assertTrue(warning and warning[-1]["keys"] == "workers", warning)
        finally:
            tally = load.join()
        print(f"load: {tally.ok} answered, {tally.failed} failed, {tally.retried} retried", file=sys.stderr)
        self.assertEqual(tally.failed, 0, tally.failures)
        self.assertEqual(tally.retried, 0, "the proxy closed keep-alive connections on a reload")
        for what, at in (("good", good_at), ("broken", broken_at), ("restart-only", restart_at)):
            self.assertTrue(any(t > at for t in tally.ok_times), f"no request answered after the {what} reload")
        self.assertGreater(tally.ok, 100)
        self.assertGreaterEqual(self.upstream.request_count(), tally.ok, "answers that never went upstream")
        success, failure = reload_counts(self.proxy)
        self.assertEqual((success - success_before, failure - failure_before), (2, 1))
        self.assertTrue(self.proxy.alive())


class TlsCertificateSwap(harness.IntegrationTestCase):
    """New handshakes get the new certificate; connections made before keep working."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = make_ca(cls.workdir, "swap-ca")
        cls.cert, cls.key = make_server_cert(cls.workdir, "listener", cls.ca, "IP:127.0.0.1")
        cls.upstream = cls.start_upstream(canned=canned_upstream())
        cls.proxy = cls.start_proxy(reload_config_text(cls.workdir, cls.upstream.url, tls=(cls.cert, cls.key)))
        cls.token = cls.proxy.issue_token("demo", "device-swap")["token"]

    def serial_of(self, cert):
        out = subprocess.run([Tools.openssl, "x509", "-noout", "-serial", "-in", cert], capture_output=True,
                             text=True, check=True, timeout=30).stdout
        return out.strip().split("=", 1)[1].upper()

    def served_serial(self):
        """The serial number of the certificate a new handshake gets."""
        context = ssl.create_default_context(cafile=self.ca[0])
        with socket.create_connection(self.proxy.address, timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.getpeercert()["serialNumber"].upper()

    def install(self, name):
        """A new certificate and key for the listener, put in place of the configured files."""
        cert, key = make_server_cert(self.workdir, name, self.ca, "IP:127.0.0.1")
        os.replace(key, self.key)
        os.replace(cert, self.cert)
        return self.serial_of(self.cert)

    def test_certificate_swap_under_load_fails_no_request(self):
        old_serial = self.served_serial()
        self.assertEqual(old_serial, self.serial_of(self.cert))
        context = ssl.create_default_context(cafile=self.ca[0])
        targets = [f"/scep/{self.token}?operation=GetCACaps", f"/scep/{self.token}?operation=GetCACert"]
        load = LoadClients(self.proxy.address, targets, clients=4, seconds=LOAD_SECONDS, tls_context=context).start()
        try:
            time.sleep(2)
            new_serial = self.install("listener-renewed")
            self.assertNotEqual(new_serial, old_serial)
            swapped_at = sighup_and_wait(self.proxy, "config_reloaded")
            self.assertEqual(self.served_serial(), new_serial)
            time.sleep(2)
            # A key that doesn't belong to the certificate: rejected, the renewed pair stays.
            _, stray_key = make_server_cert(self.workdir, "stray", self.ca, "IP:127.0.0.1")
            with open(stray_key) as source, open(self.key, "w") as target:
                target.write(source.read())
            sighup_and_wait(self.proxy, "config_reload_rejected")
            detail = log_events(self.proxy, "config_reload_failed")[-1]["detail"]
            self.assertRegex(detail, rf"^{re.escape(self.proxy.config_path)}:\d+:\d+: scep\.tls: private key .*(mismatch|does not match)")
            self.assertEqual(self.served_serial(), new_serial)
        finally:
            tally = load.join()
        print(f"load: {tally.ok} answered, {tally.failed} failed, {tally.retried} retried", file=sys.stderr)
        self.assertEqual(tally.failed, 0, tally.failures)
        self.assertEqual(tally.retried, 0)
        self.assertTrue(any(t > swapped_at for t in tally.ok_times))
        self.assertGreater(tally.ok, 50)
        self.assertGreaterEqual(self.upstream.request_count(), tally.ok, "answers that never went upstream")


class AdminReload(harness.IntegrationTestCase):
    """The admin API takes the reloaded bearer token and profiles; its listener stays."""

    def test_new_bearer_token_and_profile_after_sighup(self):
        old_token, new_token = "old-" + "a" * 28, "new-" + "b" * 28
        token_file = self.write_file("admin.token", old_token)
        upstream = self.start_upstream(canned=canned_upstream())

        def config(extra_profile):
            profiles = [harness.Profile("demo", upstream.url)] + (
                [harness.Profile("second", upstream.url)] if extra_profile else [])
            return proxy_config(self.workdir, profiles, admin_token_file=token_file)
        proxy = self.start_proxy(config(False), name="admin-reload")
        admin = proxy.listener_address("admin")
        enroll_second = {"profile": "second", "device_id": "device-admin-reload"}
        refused, _ = json_request(admin, "POST", "/api/v1/enrollments", enroll_second, token=old_token)
        self.assertEqual(refused.status, 400)  # no such profile yet

        with open(proxy.config_path, "w") as f:
            f.write(config(True))
        self.write_file("admin.token", new_token)
        sighup_and_wait(proxy, "config_reloaded")
        self.assertEqual(json_request(admin, "GET", "/api/v1/devices/nobody", token=old_token)[0].status, 401)
        self.assertEqual(json_request(admin, "GET", "/api/v1/devices/nobody", token=new_token)[0].status, 404)
        issued, answer = json_request(admin, "POST", "/api/v1/enrollments", enroll_second, token=new_token)
        self.assertEqual(issued.status, 201, issued.body)
        served = http_get(proxy.address, f"/scep/{answer['token']}?operation=GetCACaps")
        self.assertEqual(served.status, 200, served.body)


class ServiceNotifications(harness.IntegrationTestCase):
    """sd_notify: READY=1 once listening, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a reload,
    STOPPING=1 on SIGTERM. The test plays systemd: a datagram socket named by NOTIFY_SOCKET."""

    def test_ready_reloading_stopping(self):
        path = os.path.join(self.workdir, "notify.sock")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(receiver.close)
        receiver.bind(path)
        receiver.settimeout(20)
        upstream = self.start_upstream(canned=canned_upstream())
        os.environ["NOTIFY_SOCKET"] = path
        try:
            proxy = self.start_proxy(reload_config_text(self.workdir, upstream.url, metrics=False), name="notified")
        finally:
            del os.environ["NOTIFY_SOCKET"]

        def next_message():
            return dict(line.split("=", 1) for line in receiver.recv(4096).decode().splitlines() if "=" in line)

        ready = next_message()
        self.assertEqual(ready.get("READY"), "1", ready)
        self.assertTrue(harness.tcp_port_accepts(*proxy.address), "READY=1 before the listener accepts")

        proxy.process.send_signal(signal.SIGHUP)
        reloading = next_message()
        self.assertEqual(reloading.get("RELOADING"), "1", reloading)
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.assertLessEqual(abs(now_usec - int(reloading["MONOTONIC_USEC"])), 30_000_000)
        self.assertEqual(next_message().get("READY"), "1")

        proxy.process.send_signal(signal.SIGTERM)
        self.assertEqual(next_message().get("STOPPING"), "1")
        self.assertEqual(proxy.process.wait(harness.STOP_TIMEOUT), 0)


if __name__ == "__main__":
    harness.main()
