// SCEP signed attributes: which OIDs they are, and the rules for their values (shared by both pkiMessage readers).
#include "pkcs7/scep_attributes.h"

#include <cstring>
#include <string>
#include <vector>

#include "pkcs7/openssl_raii.h"

namespace scepproxy::pkcs7 {

namespace {

// DER contents (after tag and length) of the OIDs the SCEP attributes live under.
constexpr std::uint8_t kScepAttributeArc[] = {0x60, 0x86, 0x48, 0x01, 0x86,
                                              0xF8, 0x45, 0x01, 0x09};                         // 2.16.840.1.113733.1.9
constexpr std::uint8_t kFailInfoTextOid[] = {0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x18, 0x01};  // 1.3.6.1.5.5.7.24.1

const char* attribute_name(ScepAttribute attribute) {
    switch (attribute) {
        case ScepAttribute::message_type: return "messageType";
        case ScepAttribute::pki_status: return "pkiStatus";
        case ScepAttribute::fail_info: return "failInfo";
        case ScepAttribute::sender_nonce: return "senderNonce";
        case ScepAttribute::recipient_nonce: return "recipientNonce";
        case ScepAttribute::transaction_id: return "transactionID";
        case ScepAttribute::fail_info_text: return "failInfoText";
        case ScepAttribute::count:
        case ScepAttribute::other: break;
    }
    return "other";
}

// What is wrong with one attribute value; nullptr when nothing is.
using Problem = const char*;

// RFC 8894 says PrintableString; IA5String and UTF8String are accepted too (lenient on the
// string type, strict on the characters) since the CA, not the proxy, is the judge of style.
bool is_text_type(int type) {
    return type == V_ASN1_PRINTABLESTRING || type == V_ASN1_IA5STRING || type == V_ASN1_UTF8STRING;
}

Problem read_printable(const ASN1_TYPE* value, std::size_t max_chars, std::string* out) {
    if (!is_text_type(value->type)) return "not a string";
    const ASN1_STRING* text = value->value.asn1_string;
    const int length = ASN1_STRING_length(text);
    if (length <= 0) return "empty";
    if (static_cast<std::size_t>(length) > max_chars) return "too long";
    const unsigned char* bytes = ASN1_STRING_get0_data(text);
    for (int i = 0; i < length; ++i)
        if (bytes[i] < 0x20 || bytes[i] > 0x7e) return "not printable ASCII";
    out->assign(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(length));
    return nullptr;
}

// messageType, pkiStatus and failInfo are decimal numbers written as strings ("19").
Problem read_decimal(const ASN1_TYPE* value, unsigned* out) {
    constexpr std::size_t kMaxDigits = 4;
    std::string text;
    if (Problem problem = read_printable(value, kMaxDigits, &text)) return problem;
    unsigned number = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return "not a decimal number";
        number = number * 10 + static_cast<unsigned>(c - '0');
    }
    *out = number;
    return nullptr;
}

Problem read_nonce(const ASN1_TYPE* value, std::size_t max_bytes, std::vector<std::uint8_t>* out) {
    if (value->type != V_ASN1_OCTET_STRING) return "not an OCTET STRING";
    const ASN1_STRING* octets = value->value.octet_string;
    const int length = ASN1_STRING_length(octets);
    if (length <= 0) return "empty";
    if (static_cast<std::size_t>(length) > max_bytes) return "too long";
    const unsigned char* bytes = ASN1_STRING_get0_data(octets);
    out->assign(bytes, bytes + length);
    return nullptr;
}

// failInfoText is free text (UTF8String in RFC 8894) that ends up in logs: valid UTF-8, no control characters.
Problem read_free_text(const ASN1_TYPE* value, std::size_t max_bytes, std::string* out) {
    if (!is_text_type(value->type)) return "not a string";
    const ASN1_STRING* text = value->value.asn1_string;
    if (static_cast<std::size_t>(ASN1_STRING_length(text)) > max_bytes) return "too long";
    OpensslErrorScope error_scope;  // malformed UTF-8 leaves an error on OpenSSL's queue
    unsigned char* converted = nullptr;
    const int length = ASN1_STRING_to_UTF8(&converted, text);  // also rejects malformed UTF-8
    OpensslPtr<unsigned char> utf8(converted);
    if (length < 0) return "not valid UTF-8";
    if (static_cast<std::size_t>(length) > max_bytes) return "too long";
    for (int i = 0; i < length; ++i)
        if (utf8.get()[i] < 0x20 || utf8.get()[i] == 0x7f) return "control character";
    out->assign(reinterpret_cast<const char*>(utf8.get()), static_cast<std::size_t>(length));
    return nullptr;
}

MessageType message_type_from_number(unsigned number) {
    switch (number) {
        case 3: return MessageType::cert_rep;
        case 17: return MessageType::renewal_req;
        case 19: return MessageType::pkcs_req;
        case 20: return MessageType::cert_poll;
        case 21: return MessageType::get_cert;
        case 22: return MessageType::get_crl;
        default: return MessageType::unknown;
    }
}

Problem read_pki_status(const ASN1_TYPE* value, std::optional<PkiStatus>* out) {
    unsigned number = 0;
    if (Problem problem = read_decimal(value, &number)) return problem;
    switch (number) {
        case 0: *out = PkiStatus::success; return nullptr;
        case 2: *out = PkiStatus::failure; return nullptr;
        case 3: *out = PkiStatus::pending; return nullptr;
        default: return "not 0, 2 or 3";
    }
}

Problem read_fail_info(const ASN1_TYPE* value, std::optional<FailInfo>* out) {
    unsigned number = 0;
    if (Problem problem = read_decimal(value, &number)) return problem;
    if (number > static_cast<unsigned>(FailInfo::bad_cert_id)) return "not 0 to 4";
    *out = static_cast<FailInfo>(number);
    return nullptr;
}

Problem read_attribute(ScepAttribute attribute, const ASN1_TYPE* value, const PkiMessageLimits& limits,
                       PkiMessageInfo* info) {
    switch (attribute) {
        case ScepAttribute::message_type: {
            if (Problem problem = read_decimal(value, &info->message_type_number)) return problem;
            info->message_type = message_type_from_number(info->message_type_number);
            return nullptr;
        }
        case ScepAttribute::pki_status: return read_pki_status(value, &info->pki_status);
        case ScepAttribute::fail_info: return read_fail_info(value, &info->fail_info);
        case ScepAttribute::sender_nonce: return read_nonce(value, limits.max_nonce_bytes, &info->sender_nonce);
        case ScepAttribute::recipient_nonce: return read_nonce(value, limits.max_nonce_bytes, &info->recipient_nonce);
        case ScepAttribute::transaction_id:
            return read_printable(value, limits.max_transaction_id_chars, &info->transaction_id);
        case ScepAttribute::fail_info_text: {
            std::string text;
            if (Problem problem = read_free_text(value, limits.max_fail_info_text_bytes, &text)) return problem;
            info->fail_info_text = std::move(text);
            return nullptr;
        }
        case ScepAttribute::count:
        case ScepAttribute::other: break;
    }
    return nullptr;
}

PkiMessageParse attribute_failure(ScepAttribute attribute, Problem problem) {
    return PkiMessageParse::failure(ParseError::bad_attribute, std::string(attribute_name(attribute)) + ": " + problem);
}

}  // namespace

ScepAttribute identify_attribute(std::span<const std::uint8_t> oid) {
    if (oid.size() == sizeof(kFailInfoTextOid) && std::memcmp(oid.data(), kFailInfoTextOid, oid.size()) == 0)
        return ScepAttribute::fail_info_text;
    if (oid.size() != sizeof(kScepAttributeArc) + 1 ||
        std::memcmp(oid.data(), kScepAttributeArc, sizeof(kScepAttributeArc)) != 0)
        return ScepAttribute::other;
    switch (oid[sizeof(kScepAttributeArc)]) {
        case 2: return ScepAttribute::message_type;
        case 3: return ScepAttribute::pki_status;
        case 4: return ScepAttribute::fail_info;
        case 5: return ScepAttribute::sender_nonce;
        case 6: return ScepAttribute::recipient_nonce;
        case 7: return ScepAttribute::transaction_id;
        default: return ScepAttribute::other;
    }
}

std::optional<PkiMessageParse> ScepAttributeCollector::add(ScepAttribute which, int value_count,
                                                           const ASN1_TYPE* value) {
    if (which == ScepAttribute::other || which == ScepAttribute::count) return std::nullopt;
    bool& already = seen_[static_cast<std::size_t>(which)];
    if (already) return attribute_failure(which, "duplicated");
    already = true;
    if (value_count != 1) return attribute_failure(which, "not exactly one value");
    if (value == nullptr) return attribute_failure(which, "no value");
    if (Problem problem = read_attribute(which, value, limits_, info_)) return attribute_failure(which, problem);
    return std::nullopt;
}

std::optional<PkiMessageParse> ScepAttributeCollector::finish() const {
    if (!seen_[static_cast<std::size_t>(ScepAttribute::message_type)])
        return PkiMessageParse::failure(ParseError::missing_message_type, "no messageType signed attribute");
    if (!seen_[static_cast<std::size_t>(ScepAttribute::transaction_id)])
        return PkiMessageParse::failure(ParseError::missing_transaction_id, "no transactionID signed attribute");
    if (info_->message_type == MessageType::cert_rep && !info_->pki_status)
        return PkiMessageParse::failure(ParseError::missing_pki_status, "CertRep without pkiStatus");
    return std::nullopt;
}

}  // namespace scepproxy::pkcs7
