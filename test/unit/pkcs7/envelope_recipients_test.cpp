// Tests for read_envelope_recipients: real scepclient/scepserver captures, NDES-style RA envelopes made with OpenSSL, every truncation.
#include <catch2/catch.hpp>

#include <openssl/cms.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "pkcs7/ca_certificates.h"
#include "pkcs7/envelope_recipients.h"
#include "test/unit/pkcs7/pkcs7_fixtures.h"
#include "test/unit/pkcs7/scep_message_builder.h"

using namespace scepproxy::pkcs7;
using namespace scepproxy::pkcs7::test;

namespace {

RecipientId only_recipient(const std::vector<std::uint8_t>& der) {
    const EnvelopeRecipientsParse parsed = read_envelope_recipients(der);
    INFO(to_string(parsed.error) << ": " << parsed.detail);
    REQUIRE(parsed.ok());
    REQUIRE(parsed.value->key_transport.size() == 1);
    REQUIRE(parsed.value->other_recipients == 0);
    return parsed.value->key_transport[0];
}

std::vector<CertificateSummary> certificates_of(const std::string& fixture) {
    const CaCertificatesParse parsed = parse_ca_certificates(read_fixture(fixture));
    REQUIRE(parsed.ok());
    return parsed.value->certificates;
}

// The NDES-style chain's certificates as OpenSSL objects, in the order sent (RA signing, RA encryption, CA).
std::vector<OpensslPtr<X509>> ra_chain_x509() {
    const std::vector<std::uint8_t> der = read_fixture("getcacert-ra-chain.p7b");
    const unsigned char* cursor = der.data();
    OpensslPtr<CMS_ContentInfo> cms(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der.size())));
    REQUIRE(cms);
    OpensslPtr<STACK_OF(X509)> certs(CMS_get1_certs(cms.get()));
    REQUIRE(certs);
    std::vector<OpensslPtr<X509>> out;
    for (int i = 0; i < sk_X509_num(certs.get()); ++i) {
        X509* cert = sk_X509_value(certs.get(), i);
        X509_up_ref(cert);
        out.emplace_back(cert);
    }
    return out;
}

std::vector<std::uint8_t> to_der(CMS_ContentInfo* cms) {
    const int length = i2d_CMS_ContentInfo(cms, nullptr);
    REQUIRE(length > 0);
    std::vector<std::uint8_t> der(static_cast<std::size_t>(length));
    unsigned char* cursor = der.data();
    REQUIRE(i2d_CMS_ContentInfo(cms, &cursor) == length);
    return der;
}

enum class Encoding { der, ber };

// An EnvelopedData (AES-128-CBC) of a stand-in CSR for these recipients, as a device makes it:
// DER, or BER with indefinite lengths as streaming encoders write it.
std::vector<std::uint8_t> envelope_for(const std::vector<X509*>& recipients, unsigned extra_flags = 0,
                                       Encoding encoding = Encoding::der) {
    OpensslPtr<STACK_OF(X509)> certs(sk_X509_new_null());
    for (X509* cert : recipients) {
        REQUIRE(X509_up_ref(cert) == 1);
        REQUIRE(sk_X509_push(certs.get(), cert) > 0);
    }
    const std::string csr = "stand-in for a PKCS#10 request";
    OpensslPtr<BIO> in(BIO_new_mem_buf(csr.data(), static_cast<int>(csr.size())));
    if (encoding == Encoding::ber) {
        OpensslPtr<CMS_ContentInfo> cms(CMS_encrypt(certs.get(), in.get(), EVP_aes_128_cbc(),
                                                    CMS_BINARY | CMS_STREAM | extra_flags));
        REQUIRE(cms);
        OpensslPtr<BIO> out(BIO_new(BIO_s_mem()));
        REQUIRE(i2d_CMS_bio_stream(out.get(), cms.get(), in.get(), CMS_STREAM) == 1);
        char* data = nullptr;
        const long length = BIO_get_mem_data(out.get(), &data);
        return std::vector<std::uint8_t>(data, data + length);
    }
    OpensslPtr<CMS_ContentInfo> cms(CMS_encrypt(certs.get(), in.get(), EVP_aes_128_cbc(), CMS_BINARY | extra_flags));
    REQUIRE(cms);
    return to_der(cms.get());
}

std::vector<std::uint8_t> signed_around(const std::vector<std::uint8_t>& envelope) {
    static const TestSigner signer = make_test_signer("SCEP SIGNER", 7);
    TestMessage message;
    message.attributes = pkcs_req_attributes();
    message.content.assign(envelope.begin(), envelope.end());
    return build_signed_message(signer, message);
}

const CertificateSummary& by_subject(const std::vector<CertificateSummary>& certificates, const std::string& subject) {
    for (const CertificateSummary& certificate : certificates)
        if (certificate.subject == subject) return certificate;
    FAIL("no certificate " << subject);
    return certificates.front();
}

constexpr const char* kRealRequests[] = {"pkcsreq.der", "pkcsreq-wrong-challenge.der", "pkcsreq-for-pending.der",
                                         "renewalreq.der", "certpoll-for-pending.der"};

}  // namespace

TEST_CASE("real scepclient requests name scepserver's CA certificate as their recipient", "[pkcs7][envelope]") {
    const std::vector<CertificateSummary> ca = certificates_of("getcacert-single.der");
    REQUIRE(ca.size() == 1);
    for (const char* name : kRealRequests) {
        INFO(name);
        const RecipientId recipient = only_recipient(read_fixture(name));
        CHECK(recipient.kind == RecipientIdKind::issuer_and_serial);
        CHECK(names_certificate(recipient, ca[0]));
        // The same facts openssl printed when the fixtures were made.
        CHECK(describe(recipient) == "issuer=" + expected("ca_issuer") + " serial=" + expected("ca_serial"));
    }
}

TEST_CASE("a real CertRep SUCCESS is enveloped for the device's own signer certificate", "[pkcs7][envelope]") {
    const RecipientId recipient = only_recipient(read_fixture("certrep-success.der"));
    CHECK(describe(recipient) ==
          "issuer=" + expected("client_signer_issuer") + " serial=" + expected("client_signer_serial"));
    CHECK_FALSE(names_certificate(recipient, certificates_of("getcacert-single.der")[0]));
}

TEST_CASE("CertReps without content have no envelope", "[pkcs7][envelope]") {
    for (const char* name : {"certrep-failure.der", "certrep-pending.der"}) {
        INFO(name);
        const EnvelopeRecipientsParse parsed = read_envelope_recipients(read_fixture(name));
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.error == ParseError::no_envelope);
    }
}

TEST_CASE("an NDES-style request names the RA encryption certificate, by issuer and serial or key id",
          "[pkcs7][envelope]") {
    const std::vector<CertificateSummary> chain = certificates_of("getcacert-ra-chain.p7b");
    const std::vector<OpensslPtr<X509>> x509 = ra_chain_x509();
    const CertificateSummary& ra_encrypt = by_subject(chain, expected("ra_encrypt_subject"));
    const CertificateSummary& ra_sign = by_subject(chain, expected("ra_sign_subject"));
    const CertificateSummary& ca = by_subject(chain, expected("ca_subject"));
    X509* encrypt_x509 = nullptr;
    for (const auto& cert : x509)
        if (summarize_certificate(cert.get()).subject == expected("ra_encrypt_subject")) encrypt_x509 = cert.get();
    REQUIRE(encrypt_x509 != nullptr);

    SECTION("issuerAndSerialNumber") {
        const RecipientId recipient = only_recipient(signed_around(envelope_for({encrypt_x509})));
        CHECK(recipient.kind == RecipientIdKind::issuer_and_serial);
        CHECK(names_certificate(recipient, ra_encrypt));
        CHECK_FALSE(names_certificate(recipient, ra_sign));  // same issuer, other serial
        CHECK_FALSE(names_certificate(recipient, ca));
        CHECK(describe(recipient) == "issuer=" + expected("ca_subject") + " serial=" + expected("ra_encrypt_serial"));
    }
    SECTION("subjectKeyIdentifier") {
        REQUIRE_FALSE(ra_encrypt.subject_key_id.empty());  // openssl x509 -req adds one
        const RecipientId recipient = only_recipient(signed_around(envelope_for({encrypt_x509}, CMS_USE_KEYID)));
        CHECK(recipient.kind == RecipientIdKind::subject_key_id);
        CHECK(names_certificate(recipient, ra_encrypt));
        CHECK_FALSE(names_certificate(recipient, ra_sign));
        CHECK_FALSE(names_certificate(recipient, ca));
    }
}

TEST_CASE("several recipients are all read, up to the limit", "[pkcs7][envelope]") {
    const std::vector<OpensslPtr<X509>> x509 = ra_chain_x509();
    std::vector<X509*> all;
    for (const auto& cert : x509) all.push_back(cert.get());
    const std::vector<std::uint8_t> message = signed_around(envelope_for(all));

    const EnvelopeRecipientsParse parsed = read_envelope_recipients(message);
    REQUIRE(parsed.ok());
    REQUIRE(parsed.value->key_transport.size() == all.size());
    // DER sorts a SET OF: each certificate is named by exactly one recipient, in whatever order.
    for (X509* cert : all) {
        const CertificateSummary summary = summarize_certificate(cert);
        int named = 0;
        for (const RecipientId& recipient : parsed.value->key_transport) named += names_certificate(recipient, summary);
        CHECK(named == 1);
    }

    EnvelopeLimits tight;
    tight.max_recipients = all.size() - 1;
    const EnvelopeRecipientsParse refused = read_envelope_recipients(message, tight);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error == ParseError::too_many_recipients);
}

TEST_CASE("a recipient field over its limit is refused, from DER and BER alike", "[pkcs7][envelope]") {
    const std::vector<OpensslPtr<X509>> x509 = ra_chain_x509();
    X509* recipient = x509[0].get();
    struct Case {
        const char* what;
        unsigned flags;
        EnvelopeLimits limits;
    };
    EnvelopeLimits small_issuer, small_serial, small_key_id;
    small_issuer.max_issuer_bytes = 10;  // the chain's issuer Name is longer
    small_serial.max_serial_bytes = 1;   // the RA serials are 8 bytes
    small_key_id.max_key_id_bytes = 4;   // SHA-1 key ids are 20
    for (const Case& c : {Case{"issuer", 0u, small_issuer}, Case{"serial", 0u, small_serial},
                          Case{"key id", static_cast<unsigned>(CMS_USE_KEYID), small_key_id}}) {
        for (const Encoding encoding : {Encoding::der, Encoding::ber}) {
            INFO(c.what << (encoding == Encoding::ber ? " BER" : " DER"));
            const std::vector<std::uint8_t> message = signed_around(envelope_for({recipient}, c.flags, encoding));
            REQUIRE(read_envelope_recipients(message).ok());  // within the default limits
            const EnvelopeRecipientsParse refused = read_envelope_recipients(message, c.limits);
            REQUIRE_FALSE(refused.ok());
            CHECK(refused.error == ParseError::bad_recipient);
        }
    }
}

TEST_CASE("a BER envelope gives the same recipients as DER", "[pkcs7][envelope]") {
    const std::vector<OpensslPtr<X509>> x509 = ra_chain_x509();
    for (const unsigned flags : {0u, static_cast<unsigned>(CMS_USE_KEYID)}) {
        INFO("flags " << flags);
        const RecipientId from_der = only_recipient(signed_around(envelope_for({x509[0].get()}, flags)));
        const std::vector<std::uint8_t> ber = envelope_for({x509[0].get()}, flags, Encoding::ber);
        REQUIRE(ber[1] == 0x80);  // indefinite: the walk leaves it to OpenSSL
        CHECK(only_recipient(signed_around(ber)) == from_der);
    }
}

TEST_CASE("content that is not an EnvelopedData is refused", "[pkcs7][envelope]") {
    const TestSigner signer = make_test_signer("SCEP SIGNER", 8);
    TestMessage message;
    message.attributes = pkcs_req_attributes();
    SECTION("arbitrary bytes") { message.content = "stand-in for the encrypted pkcsPKIEnvelope"; }
    SECTION("a ContentInfo of another type") {
        const std::vector<std::uint8_t> data = build_data_content_info("plain");
        message.content.assign(data.begin(), data.end());
    }
    const EnvelopeRecipientsParse parsed = read_envelope_recipients(build_signed_message(signer, message));
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error == ParseError::not_enveloped_data);
}

TEST_CASE("what is not a pkiMessage gets the framing errors", "[pkcs7][envelope]") {
    CHECK(read_envelope_recipients(std::vector<std::uint8_t>{}).error == ParseError::empty);
    CHECK(read_envelope_recipients(std::vector<std::uint8_t>{0x30, 0x05, 0x01}).error == ParseError::truncated);
    CHECK(read_envelope_recipients(build_data_content_info("plain")).error == ParseError::not_signed_data);
    EnvelopeLimits small;
    small.max_message_bytes = 100;
    CHECK(read_envelope_recipients(read_fixture("pkcsreq.der"), small).error == ParseError::too_large);
}

TEST_CASE("every truncation of a real request is rejected", "[pkcs7][envelope]") {
    for (const char* name : kRealRequests) {
        const std::vector<std::uint8_t> der = read_fixture(name);
        REQUIRE(der[0] == 0x30);
        REQUIRE(der[1] == 0x82);
        for (std::size_t length = 0; length < der.size(); ++length) {
            INFO(name << " length " << length);
            std::vector<std::uint8_t> prefix(der.begin(), der.begin() + static_cast<long>(length));
            REQUIRE_FALSE(read_envelope_recipients(prefix).ok());
            // With the outer length patched to fit, the walk and OpenSSL meet the inner cut.
            if (length < 4) continue;
            prefix[2] = static_cast<std::uint8_t>((length - 4) >> 8);
            prefix[3] = static_cast<std::uint8_t>(length - 4);
            REQUIRE_FALSE(read_envelope_recipients(prefix).ok());
        }
    }
}

TEST_CASE("every truncation of an envelope inside a well-signed message is rejected", "[pkcs7][envelope]") {
    // The signature is fine, the envelope is cut: the recipient walk and OpenSSL must both refuse.
    const std::vector<OpensslPtr<X509>> x509 = ra_chain_x509();
    const std::vector<std::uint8_t> envelope = envelope_for({x509[1].get()});
    REQUIRE(envelope[0] == 0x30);
    REQUIRE(envelope[1] == 0x82);
    for (std::size_t length = 4; length < envelope.size(); ++length) {
        INFO("length " << length);
        std::vector<std::uint8_t> prefix(envelope.begin(), envelope.begin() + static_cast<long>(length));
        prefix[2] = static_cast<std::uint8_t>((length - 4) >> 8);
        prefix[3] = static_cast<std::uint8_t>(length - 4);
        const EnvelopeRecipientsParse parsed = read_envelope_recipients(signed_around(prefix));
        REQUIRE_FALSE(parsed.ok());
        CHECK((parsed.error == ParseError::not_enveloped_data || parsed.error == ParseError::bad_recipient));
    }
}
