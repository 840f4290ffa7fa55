// Tests for parse_ca_certificates: real GetCACert answers (single DER cert, certs-only PKCS#7) and malformed input.
#include "pkcs7/ca_certificates.h"

#include <algorithm>
#include <random>

#include <catch2/catch.hpp>

#include "test/unit/pkcs7/pkcs7_fixtures.h"
#include "test/unit/pkcs7/scep_message_builder.h"

namespace scepproxy::pkcs7 {
namespace {

using test::expected;
using test::expected_number;
using test::read_fixture;

CaCertificates parse_ok(const std::vector<std::uint8_t>& der, const CaCertificatesLimits& limits = {}) {
    CaCertificatesParse parsed = parse_ca_certificates(der, limits);
    INFO("error " << to_string(parsed.error) << ": " << parsed.detail);
    REQUIRE(parsed.ok());
    return *parsed.value;
}

void require_error(const std::vector<std::uint8_t>& der, ParseError error, const CaCertificatesLimits& limits = {}) {
    CaCertificatesParse parsed = parse_ca_certificates(der, limits);
    INFO("detail: " << parsed.detail);
    REQUIRE_FALSE(parsed.ok());
    REQUIRE(std::string(to_string(parsed.error)) == to_string(error));
}

const CertificateSummary& find_subject(const CaCertificates& answer, const std::string& subject) {
    const auto found = std::find_if(answer.certificates.begin(), answer.certificates.end(),
                                    [&](const CertificateSummary& c) { return c.subject == subject; });
    INFO("subject " << subject);
    REQUIRE(found != answer.certificates.end());
    return *found;
}

TEST_CASE("real GetCACert answer from scepserver: one DER certificate", "[pkcs7][ca_certificates]") {
    const CaCertificates answer = parse_ok(read_fixture("getcacert-single.der"));
    CHECK(answer.format == CaCertificatesFormat::single_certificate);
    REQUIRE(answer.certificates.size() == 1);
    const CertificateSummary& ca = answer.certificates[0];
    CHECK(ca.subject == expected("ca_subject"));
    CHECK(ca.issuer == expected("ca_issuer"));
    CHECK(ca.serial_hex == expected("ca_serial"));
    CHECK(ca.not_before == expected_number("ca_not_before"));
    CHECK(ca.not_after == expected_number("ca_not_after"));
    CHECK(ca.is_ca);
    CHECK(ca.key_usage == "keyCertSign,cRLSign");  // scepserver's CA template
    CHECK(ca.role == CertificateRole::ca);
    CHECK(ca.sha256_fingerprint == expected("ca_sha256_fingerprint"));
}

TEST_CASE("NDES-style certs-only PKCS#7: RA signing, RA encryption and CA", "[pkcs7][ca_certificates]") {
    const CaCertificates answer = parse_ok(read_fixture("getcacert-ra-chain.p7b"));
    CHECK(answer.format == CaCertificatesFormat::pkcs7_certs_only);
    REQUIRE(answer.certificates.size() == 3);

    const CertificateSummary& ra_sign = find_subject(answer, expected("ra_sign_subject"));
    CHECK(ra_sign.serial_hex == expected("ra_sign_serial"));
    CHECK(ra_sign.issuer == expected("ca_subject"));
    CHECK_FALSE(ra_sign.is_ca);
    CHECK(ra_sign.key_usage == "digitalSignature");
    CHECK(ra_sign.role == CertificateRole::ra_signing);
    CHECK(ra_sign.sha256_fingerprint == expected("ra_sign_sha256_fingerprint"));

    const CertificateSummary& ra_encrypt = find_subject(answer, expected("ra_encrypt_subject"));
    CHECK(ra_encrypt.serial_hex == expected("ra_encrypt_serial"));
    CHECK_FALSE(ra_encrypt.is_ca);
    CHECK(ra_encrypt.key_usage == "keyEncipherment");
    CHECK(ra_encrypt.role == CertificateRole::ra_encryption);
    CHECK(ra_encrypt.sha256_fingerprint == expected("ra_encrypt_sha256_fingerprint"));

    const CertificateSummary& ca = find_subject(answer, expected("ca_subject"));
    CHECK(ca.is_ca);
    CHECK(ca.serial_hex == expected("ca_serial"));
    CHECK(ca.role == CertificateRole::ca);
    CHECK(ca.sha256_fingerprint == expected("ca_sha256_fingerprint"));
    CHECK(std::string(to_string(CertificateRole::ra_encryption)) == "ra_encryption");
}

TEST_CASE("certificate limit", "[pkcs7][ca_certificates]") {
    CaCertificatesLimits limits;
    limits.max_certificates = 2;
    require_error(read_fixture("getcacert-ra-chain.p7b"), ParseError::too_many_certificates, limits);
    limits.max_certificates = 3;
    CHECK(parse_ok(read_fixture("getcacert-ra-chain.p7b"), limits).certificates.size() == 3);
}

TEST_CASE("size limit, empty, trailing bytes", "[pkcs7][ca_certificates]") {
    const std::vector<std::uint8_t> der = read_fixture("getcacert-single.der");
    CaCertificatesLimits limits;
    limits.max_bytes = der.size() - 1;
    require_error(der, ParseError::too_large, limits);
    require_error({}, ParseError::empty);
    std::vector<std::uint8_t> longer = der;
    longer.push_back(0);
    require_error(longer, ParseError::trailing_data);
}

TEST_CASE("SignedData without certificates", "[pkcs7][ca_certificates]") {
    const test::TestSigner signer = test::make_test_signer("no-certs", 9);
    test::TestMessage message;
    message.attributes = test::pkcs_req_attributes();
    message.include_signer_cert = false;
    require_error(test::build_signed_message(signer, message), ParseError::no_certificates);
}

TEST_CASE("CMS that is not SignedData", "[pkcs7][ca_certificates]") {
    require_error(test::build_data_content_info("not certificates"), ParseError::not_signed_data);
}

TEST_CASE("every truncation of a GetCACert answer is rejected", "[pkcs7][ca_certificates]") {
    for (const char* name : {"getcacert-single.der", "getcacert-ra-chain.p7b"}) {
        const std::vector<std::uint8_t> der = read_fixture(name);
        for (std::size_t length = 0; length < der.size(); ++length) {
            const std::vector<std::uint8_t> prefix(der.begin(), der.begin() + static_cast<long>(length));
            INFO(name << " length " << length);
            REQUIRE_FALSE(parse_ca_certificates(prefix, {}).ok());
        }
    }
}

TEST_CASE("garbage and mutated answers never crash", "[pkcs7][ca_certificates]") {
    const std::vector<std::uint8_t> original = read_fixture("getcacert-ra-chain.p7b");
    std::mt19937 random(99);
    for (int round = 0; round < 2000; ++round) {
        std::vector<std::uint8_t> der = original;
        for (int i = 0; i < 3; ++i) der[random() % der.size()] = static_cast<std::uint8_t>(random());
        const CaCertificatesParse parsed = parse_ca_certificates(der, {});
        if (parsed.ok()) {
            CHECK_FALSE(parsed.value->certificates.empty());
        }
    }
    std::vector<std::uint8_t> junk(500);
    for (auto& byte : junk) byte = static_cast<std::uint8_t>(random());
    junk[0] = 0x30;
    junk[1] = 0x82;
    junk[2] = 0x01;
    junk[3] = 0xf0;
    require_error(junk, ParseError::not_der);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("a certificate without basicConstraints or key usage is an RA for both uses", "[pkcs7][ca_certificates]") {
    const test::TestSigner plain = test::make_test_signer("one RA", 3);
    const CertificateSummary summary = summarize_certificate(plain.cert.get());
    CHECK_FALSE(summary.is_ca);
    CHECK(summary.role == CertificateRole::ra);
    CHECK(summary.sha256_fingerprint.size() == 32 * 3 - 1);
}

}  // namespace
}  // namespace scepproxy::pkcs7
