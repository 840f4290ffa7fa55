// Fuzz target: parse_pki_message and the request path's read_pki_message_attributes never crash, leave OpenSSL's error queue empty, keep their limits and agree.
#include <openssl/err.h>

#include <algorithm>
#include <span>

#include "pkcs7/pki_message.h"
#include "test/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy::pkcs7;
    const PkiMessageLimits limits;
    const std::span<const uint8_t> input(data, size);
    const PkiMessageParse result = parse_pki_message(input, limits);
    FUZZ_CHECK(ERR_peek_error() == 0, "OpenSSL's error queue is not empty");
    // The DER walk reads what the full parse reads: whatever the full parse accepts, it
    // accepts with the same attributes (it may accept more: certificates are only framed).
    const PkiMessageParse walked = read_pki_message_attributes(input, limits);
    FUZZ_CHECK(ERR_peek_error() == 0, "OpenSSL's error queue is not empty after the DER walk");
    if (!result.ok()) {
        FUZZ_CHECK(to_string(result.error) != nullptr && *to_string(result.error) != '\0', "no reason code");
        return 0;
    }
    FUZZ_CHECK(walked.ok(), "the DER walk refused what the full parse read");
    const PkiMessageInfo& fast = *walked.value;
    const PkiMessageInfo& info = *result.value;
    FUZZ_CHECK(info.message_type_number == fast.message_type_number && info.transaction_id == fast.transaction_id &&
                   info.sender_nonce == fast.sender_nonce && info.recipient_nonce == fast.recipient_nonce &&
                   info.pki_status == fast.pki_status && info.fail_info == fast.fail_info &&
                   info.fail_info_text == fast.fail_info_text,
               "the DER walk read other attributes than the full parse");
    // The walk verifies nothing; what it left to the full parse carries that parse's verdict.
    if (fast.verified)
        FUZZ_CHECK(fast.signature_valid == info.signature_valid &&
                       fast.content_digest_valid == info.content_digest_valid &&
                       fast.signer.has_value() == info.signer.has_value(),
                   "the slow path's verdict differs from the full parse's");
    else
        FUZZ_CHECK(!fast.signer && !fast.signature_valid && !fast.content_digest_valid,
                   "the DER walk verified something");
    FUZZ_CHECK(!info.transaction_id.empty() && info.transaction_id.size() <= limits.max_transaction_id_chars,
               "transactionID length outside its bounds");
    FUZZ_CHECK(std::all_of(info.transaction_id.begin(), info.transaction_id.end(),
                           [](char c) { return c >= 0x20 && c < 0x7f; }),
               "transactionID is not printable ASCII");
    FUZZ_CHECK(info.sender_nonce.size() <= limits.max_nonce_bytes, "senderNonce over its limit");
    FUZZ_CHECK(info.recipient_nonce.size() <= limits.max_nonce_bytes, "recipientNonce over its limit");
    if (info.fail_info_text) {
        FUZZ_CHECK(info.fail_info_text->size() <= limits.max_fail_info_text_bytes, "failInfoText over its limit");
    }
    if (info.message_type != MessageType::unknown) {
        FUZZ_CHECK(static_cast<unsigned>(info.message_type) == info.message_type_number, "messageType number");
    }
    if (info.message_type == MessageType::cert_rep)
        FUZZ_CHECK(info.pki_status.has_value(), "CertRep without pkiStatus");
    FUZZ_CHECK(to_string(info.message_type) != nullptr, "messageType name");
    // The digest check needs no certificate; the signature check needs the signer's key.
    if (info.signature_valid) FUZZ_CHECK(info.signer.has_value(), "a valid signature without a signer certificate");
    return 0;
}
