#!/usr/bin/env python3
# Integration: slowhttptest's slowloris (-H), slow body (-B) and slow read (-X) on loopback: no slow connection outlives its deadline + 1 s, and scepclient enrolls during each attack.
"""How a connection's life is measured: `ss` lists the proxy's side of every connection to its
port in state ESTABLISHED or CLOSE-WAIT (the proxy hasn't closed or shut it down yet; waiting in
the listen backlog counts too) every SAMPLE seconds. A connection's life is at least from the end of the first listing that shows it
to the start of the last one: never more than it really lived, so a connection seen living
longer than its deadline + 1 s really did. Connections the enrollment used (their client ports
appear in the access log with the enrollment's token) are left out: a kept-alive device
connection may rightly outlive a deadline. The proxy's own gauge (scepproxy_connections) must
come back to 0, and every attack connection must have been seen (so the attack happened)."""

import os
import re
import resource
import shutil
import subprocess
import threading
import time
import uuid

import harness
from harness import Profile, enroll, proxy_config

DEADLINE = 3.0        # seconds: header, body, idle and send timeouts of the proxy under attack
ALLOWED = DEADLINE + 1.0
SAMPLE = 0.25         # seconds between ss listings
CHALLENGE = "slow-" + uuid.uuid4().hex[:12]
SLOWHTTPTEST = shutil.which("slowhttptest")

# Attack options: each opens its connections as fast as slowhttptest can (-r), sends follow-up
# data every second (-i), and stops after -l seconds at most (-X never notices the proxy's closes).
ATTACKS = {
    "slowloris": (["-H", "-c", "4000", "-r", "4000", "-i", "1", "-l", "15"], 4000, "header_timeout"),
    "slow_body": (["-B", "-c", "2000", "-r", "4000", "-i", "1", "-s", "8192", "-l", "15"], 2000, "body_timeout"),
    "slow_read": (["-X", "-c", "2000", "-r", "4000", "-w", "512", "-y", "1024", "-n", "1", "-z", "32", "-k", "3",
                   "-l", "9"], 2000, "idle_timeout"),
}


def raise_descriptor_limit():
    """slowhttptest needs a descriptor per connection; it inherits this process's limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class ConnectionLives:
    """First and last sighting of each proxy-side connection, from repeated ss listings. A
    connection is known by its socket cookie (ss -e "sk:"), unique for the kernel's uptime and
    the same before and after accept(): a client port reused by a later connection is another one."""

    def __init__(self, port):
        self.port = port
        self.pattern = re.compile(rf"127\.0\.0\.1:{port}\s+127\.0\.0\.1:(\d+)\s.*?\bsk:([0-9a-f]+)")
        self.lives = {}          # cookie -> [client port, first seen (end of listing), last seen (start of listing)]
        self.peak = 0

    def sample(self):
        started = time.monotonic()
        listing = subprocess.run(["ss", "-Htne", "state", "established", "state", "close-wait",
                                  f"( sport = :{self.port} )"], capture_output=True, text=True, timeout=10).stdout
        ended = time.monotonic()
        found = self.pattern.findall(listing)
        for port, cookie in found:
            life = self.lives.setdefault(cookie, [int(port), ended, started])
            life[2] = started
        self.peak = max(self.peak, len(found))
        return len(found)

    def longest(self, excluded_ports):
        lives = [(last - first, port) for port, first, last in self.lives.values() if port not in excluded_ports]
        return max(lives, default=(0.0, None))

    def count(self, excluded_ports):
        return sum(1 for port, _, _ in self.lives.values() if port not in excluded_ports)


class SlowClients(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not SLOWHTTPTEST:
            raise RuntimeError("slowhttptest is missing (packaging/install_deps.sh installs it)")
        cls.nofile = raise_descriptor_limit()
        # slowhttptest quietly lowers -c to what its limit allows; then the attack isn't the one asked for.
        most = max(connections for _, connections, _ in ATTACKS.values())
        if cls.nofile < most + 256:
            raise RuntimeError(f"RLIMIT_NOFILE hard limit {cls.nofile} is below {most + 256}: slowhttptest "
                               f"and the proxy each need a descriptor per attack connection")
        cls.scepserver = cls.start_scepserver(CHALLENGE)
        challenge_file = cls.write_file("challenge", CHALLENGE + "\n")
        limits = {
            "header_timeout": f"{DEADLINE:g}s", "body_timeout": f"{DEADLINE:g}s",
            "idle_timeout": f"{DEADLINE:g}s", "send_timeout": f"{DEADLINE:g}s",
            "max_connections": 12000,
            # slowhttptest and scepclient share 127.0.0.1: no per-client limit, the deadlines are under test.
            "per_client": "{ max_connections: 0 }",
        }
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("demo", cls.scepserver.url, challenge_file=challenge_file)], limits=limits, metrics=True))
        # The attack's own token, so that the attack's requests never look like the enrollment's.
        cls.attack_token = cls.proxy.issue_token("demo", "attacker")["token"]

    def enrollment_ports(self, token):
        """Client ports of the connections that carried requests with this token."""
        wanted = harness.token_id(token)
        return {int(entry["client"].rpartition(":")[2]) for entry in self.proxy.request_log()
                if entry.get("token") == wanted}

    def run_attack(self, name):
        options, connections, reason = ATTACKS[name]
        port = self.proxy.address[1]
        url = f"http://127.0.0.1:{port}/scep/{self.attack_token}?operation=GetCACert"
        timeouts_before = self.proxy.metric("scepproxy_timeouts_total", reason=reason)
        device = f"device-{name}"
        issued = self.proxy.issue_token("demo", device)
        lives = ConnectionLives(port)
        output_path = os.path.join(self.workdir, f"slowhttptest-{name}.out")
        with open(output_path, "wb") as output:
            attack = subprocess.Popen([SLOWHTTPTEST, *options, "-u", url, "-p", "3"], stdin=subprocess.DEVNULL,
                                      stdout=output, stderr=subprocess.STDOUT)
        enrollment = {}
        enroller = threading.Thread(target=lambda: enrollment.update(
            result=enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], device)))
        try:
            # The enrollment starts once the attack holds connections (or after 5 s, whatever it holds).
            started = time.monotonic()
            while lives.sample() < min(1000, connections // 2) and time.monotonic() - started < 5:
                time.sleep(SAMPLE)
            enroller.start()
            deadline = started + 45
            # Until slowhttptest is done and the proxy holds nothing of it (bounded).
            while time.monotonic() < deadline:
                open_now = lives.sample()
                if attack.poll() is not None and open_now == 0 and not enroller.is_alive():
                    break
                time.sleep(SAMPLE)
        finally:
            if attack.poll() is None:
                attack.kill()
            attack.wait(10)
            enroller.join(harness.ENROLL_TIMEOUT)
        report = (f"{name}: peak {lives.peak} connections open, slowhttptest said:\n"
                  + harness.tail(output_path, 25))

        result = enrollment.get("result")
        self.assertIsNotNone(result, "the enrollment did not finish")
        self.assertEqual(result.returncode, 0, result.output + "\n" + report)
        self.assertIsNotNone(result.certificate, result.output)
        self.assertTrue(harness.certificate_verifies(self.scepserver.ca_pem, result.certificate))

        device_ports = self.enrollment_ports(issued["token"])
        self.assertTrue(device_ports, "the enrollment's requests are not in the access log")
        seen = lives.count(device_ports)
        self.assertGreaterEqual(seen, connections * 0.9, "the attack didn't open its connections\n" + report)
        longest, client_port = lives.longest(device_ports)
        self.assertLessEqual(longest, ALLOWED, f"a connection (client port {client_port}) stayed open "
                                               f"{longest:.2f} s, past its deadline + 1 s\n" + report)
        harness.wait_until(lambda: self.proxy.metric("scepproxy_connections", listener="scep") == 0,
                           DEADLINE + 10, "the proxy to hold no connection")
        expired = self.proxy.metric("scepproxy_timeouts_total", reason=reason) - timeouts_before
        self.assertGreaterEqual(expired, connections * 0.9, report)
        self.assertTrue(self.proxy.alive())
        print(f"\n{name}: {seen} connections seen, peak {lives.peak} open at once, longest {longest:.2f} s "
              f"(allowed {ALLOWED:g} s), {expired:.0f} {reason}", flush=True)

    def test_slowloris(self):
        self.run_attack("slowloris")

    def test_slow_body(self):
        self.run_attack("slow_body")

    def test_slow_read(self):
        self.run_attack("slow_read")


if __name__ == "__main__":
    harness.main()
