// Read-only inspection of a SCEP pkiMessage: the signed attributes and signer certificate shown in the clear.
//
// The outer CMS SignedData is parsed with OpenSSL; the encapsulated EnvelopedData (the CSR or
// the issued certificate) is never opened. Bytes in, PkiMessageParse out: never throws, never
// crashes, and leaves nothing on OpenSSL's error queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "pkcs7/certificate_summary.h"
#include "pkcs7/parse_result.h"

namespace scepproxy::pkcs7 {

// messageType values (RFC 8894 3.2.1.2). Other numbers parse as `unknown`, keeping the number.
enum class MessageType {
    unknown = 0,
    cert_rep = 3,
    renewal_req = 17,
    pkcs_req = 19,
    cert_poll = 20,  // CertPoll / GetCertInitial
    get_cert = 21,
    get_crl = 22,
};
const char* to_string(MessageType type);  // "CertRep", "PKCSReq", ..., "unknown"

enum class PkiStatus { success = 0, failure = 2, pending = 3 };
const char* to_string(PkiStatus status);  // "SUCCESS", "FAILURE", "PENDING"

enum class FailInfo { bad_alg = 0, bad_message_check = 1, bad_request = 2, bad_time = 3, bad_cert_id = 4 };
const char* to_string(FailInfo info);  // "badAlg", "badMessageCheck", ...

struct PkiMessageLimits {
    std::size_t max_message_bytes = 256 * 1024;
    std::size_t max_transaction_id_chars = 128;  // RFC 8894 IDs are hashes: 28-64 characters
    std::size_t max_nonce_bytes = 64;            // RFC 8894 nonces are 16 bytes
    std::size_t max_fail_info_text_bytes = 1024;
};

struct PkiMessageInfo {
    MessageType message_type = MessageType::unknown;
    unsigned message_type_number = 0;           // as sent: tells unknown types apart
    std::string transaction_id;                 // printable ASCII, 1..max_transaction_id_chars
    std::vector<std::uint8_t> sender_nonce;     // empty when absent
    std::vector<std::uint8_t> recipient_nonce;  // empty when absent (only CertRep carries one)
    std::optional<PkiStatus> pki_status;
    std::optional<FailInfo> fail_info;
    std::optional<std::string> fail_info_text;  // UTF-8 without control characters
    std::optional<CertificateSummary> signer;   // absent when the signer's certificate is not in the message
    // The signerInfo's signature over the signed attributes verifies with the key of `signer`
    // (CMS_SignerInfo_verify). No chain or validity check: the CA does that.
    bool signature_valid = false;
    // The messageDigest attribute matches the encapsulated content, i.e. the envelope was not
    // swapped (CMS_SignerInfo_verify_content). Only digested, never decrypted.
    bool content_digest_valid = false;
    // The full parse read the message: `signer`, signature_valid and content_digest_valid are its
    // verdict. False after the DER walk, which verifies nothing.
    bool verified = false;
};

using PkiMessageParse = ParseResult<PkiMessageInfo>;

// Errors: empty, too_large, truncated, trailing_data, not_der, not_signed_data, no_signer,
// multiple_signers, missing_message_type, missing_transaction_id, missing_pki_status (CertRep),
// bad_attribute. An invalid signature is not an error: see signature_valid.
PkiMessageParse parse_pki_message(std::span<const std::uint8_t> der, const PkiMessageLimits& limits = {});

// What the request path needs, cheaply: the same attributes and the same errors as
// parse_pki_message, read by walking the DER down to the signed attributes. No certificate is
// decoded and nothing is verified: `signer` is absent, signature_valid and content_digest_valid
// are false (`verified` false). Certificates and CRLs are only checked for framing (the CA reads
// them). Input the walk doesn't cover (BER indefinite lengths, unexpected shapes, any structural
// error) goes to parse_pki_message, whose whole answer is returned (`verified` true: its
// verdict is kept, so a caller needn't pay for the full parse twice).
PkiMessageParse read_pki_message_attributes(std::span<const std::uint8_t> der, const PkiMessageLimits& limits = {});
// The same into `info`, whose strings and vectors keep their capacity: a caller reading message
// after message into one PkiMessageInfo allocates nothing for them once they are large enough.
// nullopt: `info` holds the message. Otherwise the failure (never ok()); `info` is then unspecified.
std::optional<PkiMessageParse> read_pki_message_attributes_into(std::span<const std::uint8_t> der,
                                                                const PkiMessageLimits& limits, PkiMessageInfo& info);

}  // namespace scepproxy::pkcs7
