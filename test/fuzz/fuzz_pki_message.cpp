// Fuzz target: pkcs7::parse_pki_message on arbitrary bytes never crashes, leaves OpenSSL's error queue empty, and keeps its limits.
#include <openssl/err.h>

#include <algorithm>
#include <span>

#include "pkcs7/pki_message.h"
#include "test/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy::pkcs7;
    const PkiMessageLimits limits;
    const PkiMessageParse result = parse_pki_message(std::span<const uint8_t>(data, size), limits);
    FUZZ_CHECK(ERR_peek_error() == 0, "OpenSSL's error queue is not empty");
    if (!result.ok()) {
        FUZZ_CHECK(to_string(result.error) != nullptr && *to_string(result.error) != '\0', "no reason code");
        return 0;
    }
    const PkiMessageInfo& info = *result.value;
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
    if (info.message_type == MessageType::cert_rep) FUZZ_CHECK(info.pki_status.has_value(), "CertRep without pkiStatus");
    FUZZ_CHECK(to_string(info.message_type) != nullptr, "messageType name");
    // The digest check needs no certificate; the signature check needs the signer's key.
    if (info.signature_valid) FUZZ_CHECK(info.signer.has_value(), "a valid signature without a signer certificate");
    return 0;
}
