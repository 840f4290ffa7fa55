// Test-only: synthesises SCEP-shaped CMS SignedData with chosen signed attributes, using OpenSSL's CMS API.
#include "test/unit/pkcs7/scep_message_builder.h"

#include <algorithm>

#include <catch2/catch.hpp>
#include <openssl/ec.h>

namespace scepproxy::pkcs7::test {

namespace {

std::vector<std::uint8_t> to_der(CMS_ContentInfo* cms) {
    unsigned char* out = nullptr;
    const int length = i2d_CMS_ContentInfo(cms, &out);
    REQUIRE(length > 0);
    OpensslPtr<unsigned char> owned(out);
    return std::vector<std::uint8_t>(out, out + length);
}

OpensslPtr<X509_ATTRIBUTE> make_attribute(const TestAttribute& spec) {
    // Type 0 creates the attribute with an empty value set; the values are added one by one.
    OpensslPtr<X509_ATTRIBUTE> attribute(X509_ATTRIBUTE_create_by_txt(nullptr, spec.oid.c_str(), 0, nullptr, 0));
    REQUIRE(attribute);
    for (const std::string& value : spec.values) {
        REQUIRE(X509_ATTRIBUTE_set1_data(attribute.get(), spec.asn1_type,
                                         reinterpret_cast<const unsigned char*>(value.data()),
                                         static_cast<int>(value.size())) == 1);
    }
    return attribute;
}

CMS_SignerInfo* add_signer(CMS_ContentInfo* cms, const TestSigner& signer, const TestMessage& message) {
    const unsigned flags = CMS_BINARY | CMS_NOSMIMECAP | (message.include_signer_cert ? 0 : CMS_NOCERTS);
    CMS_SignerInfo* signer_info = CMS_add1_signer(cms, signer.cert.get(), signer.key.get(), EVP_sha256(), flags);
    REQUIRE(signer_info != nullptr);
    for (const TestAttribute& spec : message.attributes) {
        OpensslPtr<X509_ATTRIBUTE> attribute = make_attribute(spec);
        REQUIRE(CMS_signed_add1_attr(signer_info, attribute.get()) == 1);
    }
    return signer_info;
}

}  // namespace

TestSigner make_test_signer(const std::string& common_name, long serial) {
    TestSigner signer;
    signer.serial = serial;
    signer.not_before = 1700000000;  // fixed, so the test can compare what the parser reads back
    signer.not_after = 1700000000 + 86400 * 30;
    signer.key.reset(EVP_EC_gen("P-256"));
    REQUIRE(signer.key);
    signer.cert.reset(X509_new());
    X509* cert = signer.cert.get();
    REQUIRE(X509_set_version(cert, X509_VERSION_3) == 1);
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(cert), serial) == 1);
    REQUIRE(ASN1_TIME_set(X509_getm_notBefore(cert), signer.not_before) != nullptr);
    REQUIRE(ASN1_TIME_set(X509_getm_notAfter(cert), signer.not_after) != nullptr);
    X509_NAME* name = X509_get_subject_name(cert);
    REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) == 1);
    REQUIRE(X509_set_issuer_name(cert, name) == 1);
    REQUIRE(X509_set_pubkey(cert, signer.key.get()) == 1);
    REQUIRE(X509_sign(cert, signer.key.get(), EVP_sha256()) > 0);
    return signer;
}

TestAttribute printable(const char* oid, std::string value) {
    return {oid, V_ASN1_PRINTABLESTRING, {std::move(value)}};
}
TestAttribute octets(const char* oid, std::string value) { return {oid, V_ASN1_OCTET_STRING, {std::move(value)}}; }
TestAttribute utf8(const char* oid, std::string value) { return {oid, V_ASN1_UTF8STRING, {std::move(value)}}; }

std::vector<TestAttribute> pkcs_req_attributes() {
    return {printable(scep_oid::message_type, "19"), printable(scep_oid::transaction_id, kTestTransactionId),
            octets(scep_oid::sender_nonce, kTestSenderNonce)};
}

std::vector<TestAttribute> cert_rep_attributes(const std::string& pki_status) {
    return {printable(scep_oid::message_type, "3"), printable(scep_oid::pki_status, pki_status),
            printable(scep_oid::transaction_id, kTestTransactionId), octets(scep_oid::sender_nonce, kTestServerNonce),
            octets(scep_oid::recipient_nonce, kTestSenderNonce)};
}

std::vector<std::uint8_t> build_signed_message(const TestSigner& signer, const TestMessage& message) {
    // CMS_PARTIAL: an empty SignedData to which signers (and their attributes) are added before CMS_final signs.
    OpensslPtr<CMS_ContentInfo> cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, CMS_PARTIAL | CMS_BINARY));
    REQUIRE(cms);
    add_signer(cms.get(), signer, message);
    if (message.second_signer != nullptr) add_signer(cms.get(), *message.second_signer, message);
    OpensslPtr<BIO> content(BIO_new_mem_buf(message.content.data(), static_cast<int>(message.content.size())));
    REQUIRE(CMS_final(cms.get(), content.get(), nullptr, CMS_BINARY) == 1);
    return to_der(cms.get());
}

std::vector<std::uint8_t> build_data_content_info(const std::string& content) {
    OpensslPtr<BIO> in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
    OpensslPtr<CMS_ContentInfo> cms(CMS_data_create(in.get(), CMS_BINARY));
    REQUIRE(cms);
    return to_der(cms.get());
}

void replace_bytes(std::vector<std::uint8_t>& der, const std::string& from, const std::string& to) {
    REQUIRE(from.size() == to.size());
    const auto found = std::search(der.begin(), der.end(), from.begin(), from.end());
    INFO("looking for " << from);
    REQUIRE(found != der.end());
    std::copy(to.begin(), to.end(), found);
}

}  // namespace scepproxy::pkcs7::test
