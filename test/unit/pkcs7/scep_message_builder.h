// Test-only: synthesises SCEP-shaped CMS SignedData with chosen signed attributes, using OpenSSL's CMS API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pkcs7/openssl_raii.h"

namespace scepproxy::pkcs7::test {

namespace scep_oid {
inline constexpr const char* message_type = "2.16.840.1.113733.1.9.2";
inline constexpr const char* pki_status = "2.16.840.1.113733.1.9.3";
inline constexpr const char* fail_info = "2.16.840.1.113733.1.9.4";
inline constexpr const char* sender_nonce = "2.16.840.1.113733.1.9.5";
inline constexpr const char* recipient_nonce = "2.16.840.1.113733.1.9.6";
inline constexpr const char* transaction_id = "2.16.840.1.113733.1.9.7";
inline constexpr const char* fail_info_text = "1.3.6.1.5.5.7.24.1";
}  // namespace scep_oid

// A throwaway P-256 key with a self-signed certificate "CN=<common_name>".
struct TestSigner {
    OpensslPtr<EVP_PKEY> key;
    OpensslPtr<X509> cert;
    long serial = 0;
    std::int64_t not_before = 0;
    std::int64_t not_after = 0;
};
TestSigner make_test_signer(const std::string& common_name, long serial);

struct TestAttribute {
    std::string oid;
    int asn1_type = 0;                // V_ASN1_PRINTABLESTRING, V_ASN1_OCTET_STRING, ...
    std::vector<std::string> values;  // one value normally; zero or several to test rejection
};
TestAttribute printable(const char* oid, std::string value);
TestAttribute octets(const char* oid, std::string value);
TestAttribute utf8(const char* oid, std::string value);

struct TestMessage {
    std::vector<TestAttribute> attributes;
    std::string content = "stand-in for the encrypted pkcsPKIEnvelope";
    bool include_signer_cert = true;
    const TestSigner* second_signer = nullptr;  // a second signerInfo, same attributes
};

// The usual PKCSReq attributes: messageType 19, a transactionID and a 16-byte senderNonce.
std::vector<TestAttribute> pkcs_req_attributes();
// A CertRep answering it: messageType 3, the given pkiStatus, recipientNonce = the request's senderNonce.
std::vector<TestAttribute> cert_rep_attributes(const std::string& pki_status);

inline const std::string kTestTransactionId = "5A0F1B3C5D7E9F00112233445566778899AABBCC";
inline const std::string kTestSenderNonce = "0123456789abcdef";
inline const std::string kTestServerNonce = "fedcba9876543210";

// DER of a SignedData signed by `signer` (SHA-256) over `message.content` with its attributes.
std::vector<std::uint8_t> build_signed_message(const TestSigner& signer, const TestMessage& message);

// DER of a plain id-data ContentInfo: CMS, but not SignedData.
std::vector<std::uint8_t> build_data_content_info(const std::string& content);

// Replaces the first occurrence of `from` by `to` (same length); fails the test if absent.
void replace_bytes(std::vector<std::uint8_t>& der, const std::string& from, const std::string& to);

}  // namespace scepproxy::pkcs7::test
