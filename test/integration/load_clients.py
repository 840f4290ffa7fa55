# Bounded keep-alive load for integration tests: N client threads, one reused connection each, every answer checked.
"""Why not wrk: these tests must tell a lost request from a keep-alive race and check every
answer (status, complete body, Connection header); wrk only reports totals. A few Python
threads are plenty for the correctness claims made here (no throughput is measured).

A request counts as
  ok        a complete 200 answer;
  failed    anything else once the request was sent: another status, a cut answer, a reset,
            a timeout; or a refused connection while the proxy is meant to be up;
  retried   the connection was closed before any byte of the answer, on a connection that had
            already served a request: the server closed it as idle while the request was on its
            way (RFC 9112 9.3.1 lets a client retry an idempotent GET then). Never while the
            proxy runs normally; the drain test allows it for idle connections.
"""

import http.client
import ssl
import threading
import time
from dataclasses import dataclass, field

MAX_SECONDS = 60.0          # a forgotten load never runs for ever
REQUEST_TIMEOUT = 30.0


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    retried: int = 0
    refused: int = 0                 # connects refused once stop_on_refused applies
    closed_by_server: int = 0        # answers that said Connection: close
    failures: list = field(default_factory=list)   # (time, description), first 20
    ok_times: list = field(default_factory=list)   # monotonic time of each ok answer


class LoadClients:
    """clients threads GET `targets` (round-robin) at `address` until stop() or `seconds`.
    tls_context: an ssl.SSLContext for HTTPS; expect_body: {target: bytes} answers must equal."""

    def __init__(self, address, targets, clients=4, seconds=10.0, tls_context=None, expect_body=None):
        self.address = address
        self.targets = list(targets)
        self.clients = clients
        self.seconds = min(seconds, MAX_SECONDS)
        self.tls_context = tls_context
        self.expect_body = expect_body
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refusals_allowed = threading.Event()
        self._threads = []
        self._deadline = None

    def start(self):
        self._deadline = time.monotonic() + self.seconds
        for i in range(self.clients):
            thread = threading.Thread(target=self._run, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def allow_refusals(self):
        """From now on (the proxy is stopping), a refused new connection ends that client quietly."""
        self._refusals_allowed.set()

    def stop(self):
        self._stop.set()
        return self.join()

    def join(self):
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)
        return self.tally

    def running(self):
        return any(thread.is_alive() for thread in self._threads)

    # --- one client ------------------------------------------------------

    def _connect(self):
        if self.tls_context is not None:
            return http.client.HTTPSConnection(self.address[0], self.address[1], timeout=REQUEST_TIMEOUT,
                                               context=self.tls_context)
        return http.client.HTTPConnection(self.address[0], self.address[1], timeout=REQUEST_TIMEOUT)

    def _record(self, outcome, description=None):
        with self._lock:
            setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
            if outcome == "ok":
                self.tally.ok_times.append(time.monotonic())
            if description and len(self.tally.failures) < 20:
                self.tally.failures.append((time.monotonic(), description))

    def _run(self, index):
        connection = None
        served = 0   # requests answered on this connection
        n = index
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            target = self.targets[n % len(self.targets)]
            n += 1
            if connection is None:
                connection = self._connect()
                served = 0
                try:
                    connection.connect()
                except ConnectionRefusedError:
                    connection = None
                    if self._refusals_allowed.is_set():
                        self._record("refused")
                        return
                    self._record("failed", "connection refused")
                    time.sleep(0.05)
                    continue
                except (OSError, ssl.SSLError) as error:
                    connection = None
                    self._record("failed", f"connect: {error!r}")
                    time.sleep(0.05)
                    continue
            try:
                connection.request("GET", target)
                response = connection.getresponse()
                body = response.read()
            except http.client.RemoteDisconnected as error:
                connection.close()
                connection = None
                if served > 0:
                    self._record("retried")
                else:
                    self._record("failed", f"{target}: closed without an answer on a new connection: {error!r}")
                continue
            except (OSError, http.client.HTTPException, ssl.SSLError) as error:
                connection.close()
                connection = None
                self._record("failed", f"{target}: {error!r}")
                continue
            served += 1
            expected = self.expect_body.get(target) if self.expect_body else None
            if response.status != 200:
                self._record("failed", f"{target}: status {response.status} {body[:80]!r}")
            elif expected is not None and body != expected:
                self._record("failed", f"{target}: a different body ({len(body)} bytes)")
            else:
                self._record("ok")
            if (response.getheader("Connection") or "").lower() == "close":
                with self._lock:
                    self.tally.closed_by_server += 1
                connection.close()
                connection = None
        if connection is not None:
            connection.close()
