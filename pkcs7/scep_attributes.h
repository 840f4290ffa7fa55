// SCEP signed attributes (messageType, transactionID, nonces, pkiStatus, failInfo, failInfoText): identify and read them.
//
// Internal to pkcs7/: shared by the full OpenSSL parse (parse_pki_message) and the DER walk that
// reads only the signed attributes (read_pki_message_attributes), so both apply the same rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include <openssl/asn1.h>

#include "pkcs7/pki_message.h"

namespace scepproxy::pkcs7 {

enum class ScepAttribute {
    message_type,     // .2
    pki_status,       // .3
    fail_info,        // .4
    sender_nonce,     // .5
    recipient_nonce,  // .6
    transaction_id,   // .7
    fail_info_text,   // id-scep-failInfoText
    count,            // number of the above: sizes the "seen" table
    other,            // contentType, signingTime, messageDigest, anything else: not ours
};

// Which attribute an OID names, from the OID's DER contents (after tag and length).
ScepAttribute identify_attribute(std::span<const std::uint8_t> oid_contents);

// Collects the SCEP attributes of one signerInfo into a PkiMessageInfo, in the order they come.
class ScepAttributeCollector {
public:
    ScepAttributeCollector(const PkiMessageLimits& limits, PkiMessageInfo* info) : limits_(limits), info_(info) {}

    // One attribute with `value_count` values, `value` the first (null when there is none).
    // Returns the failure (duplicated, not exactly one value, malformed value), or nullopt.
    std::optional<PkiMessageParse> add(ScepAttribute which, int value_count, const ASN1_TYPE* value);
    // After the last attribute: the failure for a missing mandatory attribute, or nullopt.
    std::optional<PkiMessageParse> finish() const;

private:
    const PkiMessageLimits& limits_;
    PkiMessageInfo* info_;
    bool seen_[static_cast<std::size_t>(ScepAttribute::count)] = {};
};

}  // namespace scepproxy::pkcs7
