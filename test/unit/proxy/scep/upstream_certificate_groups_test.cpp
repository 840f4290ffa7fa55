// Tests for UpstreamCertificateGroups: real GetCACert answers grouped, and real or NDES-style requests matched to their group.
#include <catch2/catch.hpp>

#include <openssl/cms.h>

#include "proxy/scep/upstream_certificate_groups.h"
#include "test/unit/pkcs7/pkcs7_fixtures.h"
#include "test/unit/pkcs7/scep_message_builder.h"

namespace scepproxy::proxy {
namespace {

using pkcs7::test::read_fixture;

pkcs7::CaCertificates answer_of(const std::string& fixture) {
    const pkcs7::CaCertificatesParse parsed = pkcs7::parse_ca_certificates(read_fixture(fixture));
    REQUIRE(parsed.ok());
    return *parsed.value;
}

pkcs7::RecipientId recipient_of(const std::vector<std::uint8_t>& message) {
    const pkcs7::EnvelopeRecipientsParse parsed = pkcs7::read_envelope_recipients(message);
    REQUIRE(parsed.ok());
    REQUIRE(parsed.value->key_transport.size() == 1);
    return parsed.value->key_transport[0];
}

// A request as an NDES client makes it: enveloped for the chain's RA encryption certificate.
std::vector<std::uint8_t> request_for_ra_encryption_certificate() {
    const std::vector<std::uint8_t> der = read_fixture("getcacert-ra-chain.p7b");
    const unsigned char* cursor = der.data();
    pkcs7::OpensslPtr<CMS_ContentInfo> chain(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der.size())));
    REQUIRE(chain);
    pkcs7::OpensslPtr<STACK_OF(X509)> all(CMS_get1_certs(chain.get()));
    pkcs7::OpensslPtr<STACK_OF(X509)> recipients(sk_X509_new_null());
    for (int i = 0; i < sk_X509_num(all.get()); ++i) {
        X509* cert = sk_X509_value(all.get(), i);
        if (pkcs7::summarize_certificate(cert).role != pkcs7::CertificateRole::ra_encryption) continue;
        REQUIRE(X509_up_ref(cert) == 1);
        REQUIRE(sk_X509_push(recipients.get(), cert) > 0);
    }
    REQUIRE(sk_X509_num(recipients.get()) == 1);
    const std::string csr = "stand-in for a PKCS#10 request";
    pkcs7::OpensslPtr<BIO> in(BIO_new_mem_buf(csr.data(), static_cast<int>(csr.size())));
    pkcs7::OpensslPtr<CMS_ContentInfo> envelope(CMS_encrypt(recipients.get(), in.get(), EVP_aes_128_cbc(), CMS_BINARY));
    REQUIRE(envelope);
    const int length = i2d_CMS_ContentInfo(envelope.get(), nullptr);
    std::string envelope_der(static_cast<std::size_t>(length), '\0');
    unsigned char* out = reinterpret_cast<unsigned char*>(envelope_der.data());
    REQUIRE(i2d_CMS_ContentInfo(envelope.get(), &out) == length);
    const pkcs7::test::TestSigner signer = pkcs7::test::make_test_signer("SCEP SIGNER", 5);
    pkcs7::test::TestMessage message;
    message.attributes = pkcs7::test::pkcs_req_attributes();
    message.content = envelope_der;
    return pkcs7::test::build_signed_message(signer, message);
}

TEST_CASE("upstreams with the same certificates form one group, in any order", "[upstream_certificate_groups]") {
    pkcs7::CaCertificates chain = answer_of("getcacert-ra-chain.p7b");
    pkcs7::CaCertificates reordered = chain;
    std::reverse(reordered.certificates.begin(), reordered.certificates.end());
    const auto groups = UpstreamCertificateGroups::build({chain, answer_of("getcacert-single.der"), reordered});
    REQUIRE(groups.group_count() == 2);
    CHECK(groups.group_of_upstream(0) == groups.group_of_upstream(2));
    CHECK(groups.group_of_upstream(0) != groups.group_of_upstream(1));
    CHECK(groups.upstreams_of(*groups.group_of_upstream(0)) == std::vector<std::size_t>{0, 2});
    CHECK(groups.upstreams_of(*groups.group_of_upstream(1)) == std::vector<std::size_t>{1});
}

TEST_CASE("an upstream whose certificates are unknown is in no group", "[upstream_certificate_groups]") {
    const auto groups = UpstreamCertificateGroups::build({std::nullopt, answer_of("getcacert-single.der")});
    CHECK(groups.group_count() == 1);
    CHECK_FALSE(groups.group_of_upstream(0).has_value());
    CHECK(groups.group_of_upstream(1) == std::optional<std::size_t>(0));
    CHECK_FALSE(groups.group_of_upstream(7).has_value());
}

TEST_CASE("a request goes to the group holding the certificate it is encrypted to", "[upstream_certificate_groups]") {
    // Upstream 0 answers like scepserver (the CA only), 1 like NDES (RA signing, RA encryption, CA).
    const auto groups =
        UpstreamCertificateGroups::build({answer_of("getcacert-single.der"), answer_of("getcacert-ra-chain.p7b")});
    REQUIRE(groups.group_count() == 2);

    SECTION("scepclient encrypts to the CA of an upstream without RA") {
        CHECK(groups.groups_for(recipient_of(read_fixture("pkcsreq.der"))) == std::vector<std::size_t>{0});
        CHECK(groups.groups_for(recipient_of(read_fixture("certpoll-for-pending.der"))) == std::vector<std::size_t>{0});
    }
    SECTION("an NDES client encrypts to the RA encryption certificate") {
        // The NDES group holds the same CA, but a device never encrypts to it there: only its RA decrypts.
        CHECK(groups.groups_for(recipient_of(request_for_ra_encryption_certificate())) == std::vector<std::size_t>{1});
    }
    SECTION("a recipient no upstream has matches no group") {
        // The CertRep is enveloped for the device's own certificate.
        CHECK(groups.groups_for(recipient_of(read_fixture("certrep-success.der"))).empty());
    }
}

TEST_CASE("groups copied keep answering", "[upstream_certificate_groups]") {
    std::optional<UpstreamCertificateGroups> original =
        UpstreamCertificateGroups::build({answer_of("getcacert-single.der")});
    const UpstreamCertificateGroups copy = *original;
    original.reset();
    CHECK(copy.groups_for(recipient_of(read_fixture("pkcsreq.der"))) == std::vector<std::size_t>{0});
}

TEST_CASE("upstream masks, group keys, and whether a profile routes at all", "[upstream_certificate_groups]") {
    const pkcs7::CaCertificates single = answer_of("getcacert-single.der");
    const pkcs7::CaCertificates chain = answer_of("getcacert-ra-chain.p7b");
    SECTION("every upstream with the same certificates: no routing") {
        const auto groups = UpstreamCertificateGroups::build({single, single});
        CHECK(groups.all_known());
        CHECK(groups.every_upstream() == 0b11);
        CHECK_FALSE(groups.routes());
    }
    SECTION("nothing known yet: no routing") {
        const auto groups = UpstreamCertificateGroups::build({std::nullopt, std::nullopt});
        CHECK(groups.known_upstreams() == 0);
        CHECK_FALSE(groups.routes());
    }
    SECTION("one known, one not: routing, the unknown one in no mask") {
        const auto groups = UpstreamCertificateGroups::build({single, std::nullopt});
        CHECK(groups.routes());
        CHECK_FALSE(groups.all_known());
        CHECK(groups.known_upstreams() == 0b01);
        CHECK(groups.upstreams_for(recipient_of(read_fixture("pkcsreq.der"))) == 0b01);
    }
    SECTION("two groups: each recipient's upstreams") {
        const auto groups = UpstreamCertificateGroups::build({single, chain, single});
        CHECK(groups.routes());
        CHECK(groups.upstreams_of_group(*groups.group_of_upstream(0)) == 0b101);
        CHECK(groups.upstreams_for(recipient_of(read_fixture("pkcsreq.der"))) == 0b101);
        CHECK(groups.upstreams_for(recipient_of(request_for_ra_encryption_certificate())) == 0b010);
        CHECK(groups.upstreams_for(recipient_of(read_fixture("certrep-success.der"))) == 0);
    }
    SECTION("a group's key is its certificates', whatever its index or their order") {
        pkcs7::CaCertificates reordered = chain;
        std::reverse(reordered.certificates.begin(), reordered.certificates.end());
        const auto one = UpstreamCertificateGroups::build({single, chain});
        const auto other = UpstreamCertificateGroups::build({reordered, single});
        CHECK(one.group_key(0) == other.group_key(1));
        CHECK(one.group_key(1) == other.group_key(0));
        CHECK(one.group_key(0) != one.group_key(1));
        CHECK(one.group_key(0) != 0);
        CHECK(one.fingerprints_of(1) == other.fingerprints_of(0));
    }
}

}  // namespace
}  // namespace scepproxy::proxy
