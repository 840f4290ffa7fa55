#!/usr/bin/env python3
# Integration: packaging/quickstart.sh --check enrolls a demo device through the proxy, cleans up its processes, and can be re-run.
import os
import subprocess

import harness

QUICKSTART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "quickstart.sh")
QUICKSTART_TIMEOUT = 240


class Quickstart(harness.IntegrationTestCase):
    def run_quickstart(self, state_dir):
        environment = dict(os.environ, SCEPPROXY_BIN=harness.Tools.scepproxy, SCEPPROXY_DEMO_DIR=state_dir)
        return subprocess.run([QUICKSTART, "--check", "--port", str(harness.unused_tcp_port())],
                              cwd=self.workdir, env=environment, capture_output=True, text=True,
                              timeout=QUICKSTART_TIMEOUT)

    def assertNoProcessUses(self, state_dir):
        """No process left running with the state dir on its command line."""
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command_line = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            self.assertNotIn(state_dir, command_line, f"process {pid} survived quickstart: {command_line}")

    def test_check_enrolls_and_cleans_up_twice(self):
        state_dir = os.path.join(self.workdir, "demo")
        for run in (1, 2):
            with self.subTest(run=run):
                result = self.run_quickstart(state_dir)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertIn("CN = demo-device", result.stdout)
                self.assertTrue(os.path.exists(os.path.join(state_dir, "scepclient", "client.pem")))
                self.assertNoProcessUses(state_dir)

    def test_refuses_to_delete_a_foreign_directory(self):
        foreign = os.path.join(self.workdir, "foreign")
        os.makedirs(foreign)
        keep = self.write_file("foreign/precious.txt", "keep me\n")
        result = self.run_quickstart(foreign)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("refusing", result.stderr)
        self.assertTrue(os.path.exists(keep))


if __name__ == "__main__":
    harness.main()
