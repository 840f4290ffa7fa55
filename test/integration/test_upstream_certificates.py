#!/usr/bin/env python3
# Integration: upstreams of one profile with different CAs — each PKIOperation goes only to an upstream holding the certificate it is encrypted to; certificate metrics and change logs.
import datetime
import os
import subprocess
import time
import uuid

import harness
from harness import Profile, enroll, http_post_pki, proxy_config, wait_until

CHALLENGE = "certificates-" + uuid.uuid4().hex[:12]
INTERVAL = 0.5        # health_check.interval of "trio", seconds
FALL = 2
RISE = 2
CA_REFRESH = 2.0      # ca_refresh_interval of "trio", seconds
SLACK = 5.0           # generous: the machine is small and shared; the bounds below are upper bounds
HEALTH_CHECK = f"health_check: {{ interval: {int(INTERVAL * 1000)}ms, timeout: 400ms, fall: {FALL}, rise: {RISE} }}"
TRIO_LINES = (HEALTH_CHECK, f"ca_refresh_interval: {int(CA_REFRESH)}s", "allow_mixed_ra: true")


# --- what a pkiMessage is encrypted to, read from its DER (definite lengths: Go's pkcs7 writes DER) ---

def _der_item(data, offset):
    """(tag, start of contents, end of contents) of the DER element at OFFSET."""
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length == 0x80:
        raise ValueError("indefinite length (BER): not handled here")
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def _der_children(data, start, end):
    """[(tag, element bytes, contents start, contents end)] of the elements between START and END."""
    children = []
    offset = start
    while offset < end:
        tag, contents_start, contents_end = _der_item(data, offset)
        children.append((tag, data[offset:contents_end], contents_start, contents_end))
        offset = contents_end
    return children


def _explicit_child(data, start, end, tag):
    """The one element inside the [n] EXPLICIT element with TAG among the children of START..END."""
    for child_tag, _, contents_start, contents_end in _der_children(data, start, end):
        if child_tag == tag:
            return _der_children(data, contents_start, contents_end)[0]
    raise ValueError(f"no element with tag {tag:#x}")


def envelope_recipients(pki_message):
    """[(issuer Name DER, serial bytes)] of the KeyTransRecipientInfos of the pkiMessage's
    pkcsPKIEnvelope: the certificates the device encrypted its request to."""
    _, start, end = _der_item(pki_message, 0)                                 # ContentInfo
    _, _, sd_start, sd_end = _explicit_child(pki_message, start, end, 0xA0)     # SignedData
    encap = next(c for c in _der_children(pki_message, sd_start, sd_end) if c[0] == 0x30)   # encapContentInfo
    octets_tag, _, octets_start, octets_end = _explicit_child(pki_message, encap[2], encap[3], 0xA0)
    if octets_tag == 0x04:
        envelope = pki_message[octets_start:octets_end]
    else:  # constructed OCTET STRING: its pieces
        envelope = b"".join(pki_message[c[2]:c[3]] for c in _der_children(pki_message, octets_start, octets_end))
    _, start, end = _der_item(envelope, 0)                                    # ContentInfo
    _, _, ed_start, ed_end = _explicit_child(envelope, start, end, 0xA0)        # EnvelopedData
    recipient_infos = next(c for c in _der_children(envelope, ed_start, ed_end) if c[0] == 0x31)
    recipients = []
    for tag, _, ri_start, ri_end in _der_children(envelope, recipient_infos[2], recipient_infos[3]):
        if tag != 0x30:
            continue  # not a KeyTransRecipientInfo
        rid = _der_children(envelope, ri_start, ri_end)[1]
        if rid[0] != 0x30:
            recipients.append(("subject_key_id", envelope[rid[2]:rid[3]]))
            continue
        issuer, serial = _der_children(envelope, rid[2], rid[3])[:2]
        recipients.append((issuer[1], envelope[serial[2]:serial[3]]))
    return recipients


def certificate_der(pem_path):
    result = subprocess.run([harness.Tools.openssl, "x509", "-in", pem_path, "-outform", "DER"],
                            capture_output=True, timeout=harness.CLI_TIMEOUT, check=True)
    return result.stdout


def issuer_and_serial(pem_path):
    """(issuer Name DER, serial bytes) of a PEM certificate: how an envelope names it as recipient."""
    der = certificate_der(pem_path)
    _, start, end = _der_item(der, 0)
    _, _, tbs_start, tbs_end = _der_children(der, start, end)[0]
    fields = _der_children(der, tbs_start, tbs_end)
    if fields[0][0] == 0xA0:   # [0] version
        fields = fields[1:]
    serial, _, issuer = fields[:3]
    return (issuer[1], der[serial[2]:serial[3]])


def openssl_x509(pem_path, *options):
    result = subprocess.run([harness.Tools.openssl, "x509", "-in", pem_path, "-noout", *options],
                            capture_output=True, text=True, timeout=harness.CLI_TIMEOUT, check=True)
    return result.stdout.strip()


def not_after_unix(pem_path):
    """notAfter as Unix seconds, as `openssl x509 -enddate` prints it."""
    text = openssl_x509(pem_path, "-enddate").partition("=")[2]
    when = datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z")
    return int(when.replace(tzinfo=datetime.timezone.utc).timestamp())


def sha256_fingerprint(pem_path):
    """AB:CD:... as `openssl x509 -fingerprint -sha256` prints it."""
    return openssl_x509(pem_path, "-fingerprint", "-sha256").partition("=")[2].upper()


class UpstreamCertificates(harness.IntegrationTestCase):
    """Profile "trio": upstreams r1, r2, r3 (recording upstreams in their own processes, keeping
    bodies) in front of scepservers s1, s2 (one CA depot: one CA) and s3 (its own CA), checked
    every INTERVAL, certificates fetched every CA_REFRESH. Profile "other": r4 in front of s4, a
    fourth CA that no upstream of trio has. Each CA has its own organization (and s3 its own
    lifetime), so that an envelope's recipient (issuer and serial) tells them apart and the
    expiry metrics do too.

    The tests run in the order of their names (1..6): 5 stops s3, 6 restarts it on a new CA."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s1 = cls.start_scepserver(CHALLENGE, name="s1", ca_options=["-organization", "trio-shared"])
        cls.s2 = cls.start_scepserver(CHALLENGE, name="s2", depot=cls.s1.depot)
        cls.s3 = cls.start_scepserver(CHALLENGE, name="s3",
                                      ca_options=["-organization", "trio-lone", "-years", "7"])
        cls.s4 = cls.start_scepserver(CHALLENGE, name="s4", ca_options=["-organization", "outsider"])
        cls.s3_ca_pems = [cls.s3.ca_pem]   # every CA s3 has served, oldest first
        cls.r1, cls.r2, cls.r3, cls.r4 = (
            cls.start_upstream_process(f"r{n}", f"127.0.0.1:{server.port}", record_bodies=True)
            for n, server in enumerate((cls.s1, cls.s2, cls.s3, cls.s4), start=1))
        cls.upstream_server = {cls.r1: cls.s1, cls.r2: cls.s2, cls.r3: cls.s3}
        challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("trio", [cls.r1.url, cls.r2.url, cls.r3.url], connect_timeout="1s", timeout="20s",
                    challenge_file=challenge_file, lines=TRIO_LINES),
            Profile("other", cls.r4.url, challenge_file=challenge_file),
        ], metrics=True))

        # A PKCSReq encrypted to s4's CA: no upstream of trio can read it.
        issued = cls.proxy.issue_token("other", "device-outsider")
        outsider = enroll(cls.workdir, cls.proxy.scep_url(issued["token"]), issued["challenge"], "device-outsider")
        if outsider.returncode != 0:
            raise RuntimeError("enrollment through profile other failed:\n" + outsider.output)
        cls.outsider_message = cls.r4.bodies()[-1]

        # Enroll only once the proxy knows every upstream's certificates.
        def fetched():
            return all(cls.proxy.metric("scepproxy_upstream_certificate_fetches_total", profile=profile,
                                        upstream=cls.label(upstream), outcome="ok") >= 1
                       for profile, upstream in (("trio", cls.r1), ("trio", cls.r2), ("trio", cls.r3),
                                                 ("other", cls.r4)))
        wait_until(fetched, CA_REFRESH + SLACK, "the proxy to fetch the certificates of r1, r2, r3 and r4",
                   interval=0.1)

    @staticmethod
    def label(upstream):
        """The upstream label of metrics and logs: host:port of its URL."""
        return f"127.0.0.1:{upstream.port}"

    def up(self, upstream):
        return self.proxy.metric_value("scepproxy_upstream_up", profile="trio", upstream=self.label(upstream))

    def ca_pems(self, upstream):
        """The CA certificates a PKIOperation this upstream received may be encrypted to."""
        return self.s3_ca_pems if upstream is self.r3 else [self.upstream_server[upstream].ca_pem]

    def enroll_devices(self, count, prefix):
        """COUNT enrollments through trio, one after the other (s1 and s2 share a depot, whose
        serial file and index scepserver doesn't lock across processes). Returns the tokens."""
        tokens, failures = [], []
        for n in range(count):
            device = f"{prefix}-{n}-{uuid.uuid4().hex[:6]}"
            issued = self.proxy.issue_token("trio", device)
            result = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], device)
            tokens.append(issued["token"])
            if result.returncode != 0 or result.certificate is None:
                failures.append(f"{device}: exit {result.returncode}\n{result.output[-1500:]}")
            elif not any(harness.certificate_verifies(ca, result.certificate)
                         for ca in [self.s1.ca_pem] + self.s3_ca_pems):
                failures.append(f"{device}: the certificate verifies against no CA of trio")
        if failures:
            self.fail(f"{len(failures)} of {count} enrollments failed:\n" + "\n".join(failures))
        return tokens

    def ca_name(self, recipient):
        """Which CA of the test an envelope's recipient names (for messages)."""
        names = {issuer_and_serial(self.s1.ca_pem): "the CA of s1 and s2",
                 issuer_and_serial(self.s4.ca_pem): "s4's CA"}
        names.update({issuer_and_serial(pem): f"s3's CA #{n}" for n, pem in enumerate(self.s3_ca_pems, start=1)})
        return names.get(recipient, "no CA of this test")

    def assertEveryPkiOperationEncryptedToItsUpstream(self):
        for upstream in (self.r1, self.r2, self.r3):
            allowed = {issuer_and_serial(pem) for pem in self.ca_pems(upstream)}
            for n, message in enumerate(upstream.bodies(), start=1):
                recipients = envelope_recipients(message)
                self.assertTrue(recipients, f"{upstream.name}'s PKIOperation #{n} names no recipient")
                for recipient in recipients:
                    self.assertTrue(recipient in allowed,
                                    f"{upstream.name} (in front of {self.upstream_server[upstream].workdir}) "
                                    f"received PKIOperation #{n}, encrypted to {self.ca_name(recipient)}")

    def assertPkiOperationsAnswered200(self, tokens):
        for token in tokens:
            entry = self.proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation")
            self.assertEqual(entry.get("status"), "200", entry)

    def test_1_every_pki_operation_reaches_an_upstream_of_its_recipient(self):
        tokens = self.enroll_devices(12, "device-trio")
        self.assertPkiOperationsAnswered200(tokens)
        self.assertEveryPkiOperationEncryptedToItsUpstream()
        counts = {upstream.name: upstream.operations().count("PKIOperation")
                  for upstream in (self.r1, self.r2, self.r3)}
        print(f"  PKIOperations per upstream: {counts}")
        self.assertEqual(sum(counts.values()), 12, counts)   # none sent twice, none to r4
        # s1 and s2 serve one CA: both take the PKIOperations encrypted to it.
        self.assertGreater(counts["r1"], 0, counts)
        self.assertGreater(counts["r2"], 0, counts)

    def test_2_upstreams_with_one_ca_form_one_group(self):
        self.assertEqual(self.proxy.metric("scepproxy_upstream_certificate_groups", profile="trio"), 2)
        self.assertEqual(self.proxy.metric("scepproxy_upstream_certificate_groups", profile="other"), 1)
        # allow_mixed_ra: true says the difference is intended: no warning about it.
        warnings = [line for line in harness.read_text(self.proxy.stdout_path).splitlines()
                    if line.split(" ")[1:2] == ["warn"]
                    and harness.parse_logfmt(line).get("event") == "upstream_certificate_groups_differ"
                    and harness.parse_logfmt(line).get("profile") == "trio"]
        self.assertEqual(warnings, [])

    def test_3_expiry_metric_is_each_upstreams_ca_not_after(self):
        for upstream in (self.r1, self.r2, self.r3):
            expected = not_after_unix(self.upstream_server[upstream].ca_pem)
            value = self.proxy.metric("scepproxy_upstream_certificate_expiry_timestamp_seconds",
                                      profile="trio", upstream=self.label(upstream), role="ca")
            self.assertEqual(value, expected, f"{upstream.name}: {value} != notAfter {expected}")
        # s3's CA lives 7 years, the shared one 10: one value per upstream, not per profile.
        self.assertNotEqual(not_after_unix(self.s1.ca_pem), not_after_unix(self.s3.ca_pem))

    def test_4_pki_operation_for_a_foreign_ca_gets_400_unknown_recipient(self):
        foreign = envelope_recipients(self.outsider_message)
        self.assertEqual(foreign, [issuer_and_serial(self.s4.ca_pem)])
        seen_before = {upstream.name: len(upstream.requests()) for upstream in (self.r1, self.r2, self.r3)}
        token = self.proxy.issue_token("trio", "device-foreign-" + uuid.uuid4().hex[:6])["token"]
        response = http_post_pki(self.proxy.address, f"/scep/{token}/pkiclient.exe?operation=PKIOperation",
                                 self.outsider_message)
        self.assertEqual(response.status, 400, response.body)
        self.assertEqual(response.body.strip(), b"unknown_recipient")
        entry = self.proxy.wait_for_request_log(token=harness.token_id(token), op="PKIOperation")
        self.assertEqual(entry.get("reason"), "unknown_recipient", entry)
        for upstream in (self.r1, self.r2, self.r3):
            self.assertNotIn(self.outsider_message, upstream.bodies(), f"{upstream.name} received it")
            new = [r["operation"] for r in upstream.requests()[seen_before[upstream.name]:]]
            self.assertNotIn("PKIOperation", new, upstream.name)

    def test_5_with_the_lone_upstream_out_devices_enroll_on_the_others(self):
        self.s3.stop()   # r3 stays: it answers the checks with 599 (its forward fails)
        wait_until(lambda: self.up(self.r3) == 0, INTERVAL * (FALL + 1) + SLACK, "r3 taken out")
        r3_before = self.r3.operations().count("PKIOperation")
        tokens = self.enroll_devices(4, "device-pair")
        self.assertPkiOperationsAnswered200(tokens)
        self.assertEqual(self.r3.operations().count("PKIOperation"), r3_before)
        self.assertEveryPkiOperationEncryptedToItsUpstream()

    def test_6_new_ca_behind_an_upstream_is_noticed_within_the_refresh_interval(self):
        label = self.label(self.r3)
        old_fingerprint = sha256_fingerprint(self.s3.ca_pem)
        changes_before = self.proxy.metric("scepproxy_upstream_certificate_changes_total", profile="trio",
                                           upstream=label)
        new_depot = os.path.join(self.workdir, "s3", f"depot-{len(self.s3_ca_pems) + 1}")
        self.s3.restart_on_new_depot(new_depot, ["-organization", "trio-lone-renewed", "-years", "5"])
        self.s3_ca_pems.append(self.s3.ca_pem)
        restarted_at = time.monotonic()
        new_fingerprint = sha256_fingerprint(self.s3.ca_pem)

        def changed():
            return [e for e in self.proxy.log_events("upstream_certificates_changed")
                    if e.get("upstream") == label and new_fingerprint in e.get("new", "").split(",")]
        # Back in service after RISE checks (if the proxy fetches only upstreams in service), then
        # the next refresh.
        events = wait_until(changed, INTERVAL * (RISE + 1) + CA_REFRESH + SLACK,
                            "an upstream_certificates_changed line for r3", interval=0.1)
        print(f"  change logged {time.monotonic() - restarted_at:.2f} s after the restart "
              f"(ca_refresh_interval = {CA_REFRESH:.0f} s)")
        self.assertEqual(events[-1].get("profile"), "trio")
        self.assertEqual(events[-1].get("old", "").split(","), [old_fingerprint], events[-1])
        self.assertEqual(events[-1].get("new", "").split(","), [new_fingerprint], events[-1])
        wait_until(lambda: self.proxy.metric("scepproxy_upstream_certificate_changes_total", profile="trio",
                                             upstream=label) >= changes_before + 1,
                   SLACK, "scepproxy_upstream_certificate_changes_total of r3 to increment")
        new_not_after = not_after_unix(self.s3.ca_pem)
        wait_until(lambda: self.proxy.metric("scepproxy_upstream_certificate_expiry_timestamp_seconds",
                                             profile="trio", upstream=label, role="ca") == new_not_after,
                   SLACK, "the expiry metric of r3 to be the new CA's notAfter")
        # No other upstream changed.
        for upstream in (self.r1, self.r2):
            self.assertEqual(self.proxy.metric("scepproxy_upstream_certificate_changes_total", profile="trio",
                                               upstream=self.label(upstream)), 0, upstream.name)


class UpstreamCertificatesNamedAlike(harness.IntegrationTestCase):
    """Profile "twins": two scepservers whose CAs `scepserver ca -init` made with its default names,
    so both CA certificates have the same issuer and serial and an envelope's recipient can't tell
    them apart. The proxy routes a token's PKIOperation to the group whose GetCACert it showed
    that token (as a new user would set it up: no health checks, default names)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t1 = cls.start_scepserver(CHALLENGE, name="t1")
        cls.t2 = cls.start_scepserver(CHALLENGE, name="t2")
        cls.q1, cls.q2 = (cls.start_upstream_process(f"q{n}", f"127.0.0.1:{server.port}", record_bodies=True)
                          for n, server in enumerate((cls.t1, cls.t2), start=1))
        challenge_file = cls.write_file("challenge", CHALLENGE)
        cls.proxy = cls.start_proxy(proxy_config(cls.workdir, [
            Profile("twins", [cls.q1.url, cls.q2.url], challenge_file=challenge_file,
                    lines=("allow_mixed_ra: true",)),
        ], metrics=True))
        wait_until(lambda: cls.proxy.metric("scepproxy_upstream_certificate_groups", profile="twins") == 2,
                   SLACK, "the proxy to know both upstreams' certificates", interval=0.1)

    def test_enrollments_reach_the_ca_they_were_shown_although_both_are_named_alike(self):
        self.assertEqual(issuer_and_serial(self.t1.ca_pem), issuer_and_serial(self.t2.ca_pem))
        self.assertNotEqual(sha256_fingerprint(self.t1.ca_pem), sha256_fingerprint(self.t2.ca_pem))
        self.assertTrue(self.proxy.log_events("upstream_certificate_names_ambiguous"))
        failures = []
        for n in range(8):
            device = f"device-twin-{n}-{uuid.uuid4().hex[:6]}"
            issued = self.proxy.issue_token("twins", device)
            result = enroll(self.workdir, self.proxy.scep_url(issued["token"]), issued["challenge"], device)
            if result.returncode != 0 or result.certificate is None:
                failures.append(f"{device}: exit {result.returncode}\n{result.output[-1500:]}")
        self.assertEqual(failures, [], f"{len(failures)} of 8 enrollments failed")
        counts = [q.operations().count("PKIOperation") for q in (self.q1, self.q2)]
        print(f"  PKIOperations per upstream: {counts}")
        self.assertEqual(sum(counts), 8)
        self.assertGreater(min(counts), 0, counts)   # both CAs were shown and used
        self.assertEqual(self.proxy.log_events("recipient_ambiguous"), [])


if __name__ == "__main__":
    harness.main()
