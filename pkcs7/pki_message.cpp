// Read-only inspection of a SCEP pkiMessage: the signed attributes and signer certificate shown in the clear.
#include "pkcs7/pki_message.h"

#include <cstring>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "pkcs7/der_input.h"
#include "pkcs7/openssl_raii.h"

namespace scepproxy::pkcs7 {

namespace {

// DER contents (after tag and length) of the OIDs the SCEP attributes live under.
constexpr std::uint8_t kScepAttributeArc[] = {0x60, 0x86, 0x48, 0x01, 0x86, 0xF8, 0x45, 0x01, 0x09};  // 2.16.840.1.113733.1.9
constexpr std::uint8_t kFailInfoTextOid[] = {0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x18, 0x01};        // 1.3.6.1.5.5.7.24.1

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

bool oid_equals(const unsigned char* data, std::size_t length, std::span<const std::uint8_t> expected) {
    return length == expected.size() && std::memcmp(data, expected.data(), length) == 0;
}

ScepAttribute identify(const ASN1_OBJECT* oid) {
    const unsigned char* data = OBJ_get0_data(oid);
    const std::size_t length = OBJ_length(oid);
    if (data == nullptr) return ScepAttribute::other;
    if (oid_equals(data, length, kFailInfoTextOid)) return ScepAttribute::fail_info_text;
    if (length != sizeof(kScepAttributeArc) + 1 || std::memcmp(data, kScepAttributeArc, sizeof(kScepAttributeArc)) != 0)
        return ScepAttribute::other;
    switch (data[sizeof(kScepAttributeArc)]) {
        case 2: return ScepAttribute::message_type;
        case 3: return ScepAttribute::pki_status;
        case 4: return ScepAttribute::fail_info;
        case 5: return ScepAttribute::sender_nonce;
        case 6: return ScepAttribute::recipient_nonce;
        case 7: return ScepAttribute::transaction_id;
        default: return ScepAttribute::other;
    }
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

// Fills info from the SCEP signed attributes; returns the failure, or nullopt when all are well-formed.
std::optional<PkiMessageParse> read_scep_attributes(const CMS_SignerInfo* signer_info, const PkiMessageLimits& limits,
                                                    PkiMessageInfo* info) {
    bool seen[static_cast<std::size_t>(ScepAttribute::count)] = {};
    const int count = CMS_signed_get_attr_count(signer_info);  // -1 when there are no signed attributes
    for (int i = 0; i < count; ++i) {
        X509_ATTRIBUTE* attribute = CMS_signed_get_attr(signer_info, i);
        if (attribute == nullptr) continue;
        const ScepAttribute which = identify(X509_ATTRIBUTE_get0_object(attribute));
        if (which == ScepAttribute::other) continue;
        bool& already = seen[static_cast<std::size_t>(which)];
        if (already) return attribute_failure(which, "duplicated");
        already = true;
        if (X509_ATTRIBUTE_count(attribute) != 1) return attribute_failure(which, "not exactly one value");
        const ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attribute, 0);
        if (value == nullptr) return attribute_failure(which, "no value");
        if (Problem problem = read_attribute(which, value, limits, info)) return attribute_failure(which, problem);
    }
    if (!seen[static_cast<std::size_t>(ScepAttribute::message_type)])
        return PkiMessageParse::failure(ParseError::missing_message_type, "no messageType signed attribute");
    if (!seen[static_cast<std::size_t>(ScepAttribute::transaction_id)])
        return PkiMessageParse::failure(ParseError::missing_transaction_id, "no transactionID signed attribute");
    if (info->message_type == MessageType::cert_rep && !info->pki_status)
        return PkiMessageParse::failure(ParseError::missing_pki_status, "CertRep without pkiStatus");
    return std::nullopt;
}

// Digests the encapsulated content (the still-encrypted envelope, or nothing) the way
// CMS_verify does, and compares it with the signerInfo's messageDigest attribute.
bool content_digest_matches(CMS_ContentInfo* cms, CMS_SignerInfo* signer_info) {
    OpensslPtr<BIO> chain(CMS_dataInit(cms, nullptr));
    if (!chain) return false;
    char sink[4096];
    while (BIO_read(chain.get(), sink, sizeof(sink)) > 0) {
    }
    return CMS_SignerInfo_verify_content(signer_info, chain.get()) == 1;
}

}  // namespace

const char* to_string(MessageType type) {
    switch (type) {
        case MessageType::cert_rep: return "CertRep";
        case MessageType::renewal_req: return "RenewalReq";
        case MessageType::pkcs_req: return "PKCSReq";
        case MessageType::cert_poll: return "CertPoll";
        case MessageType::get_cert: return "GetCert";
        case MessageType::get_crl: return "GetCRL";
        case MessageType::unknown: break;
    }
    return "unknown";
}

const char* to_string(PkiStatus status) {
    switch (status) {
        case PkiStatus::success: return "SUCCESS";
        case PkiStatus::failure: return "FAILURE";
        case PkiStatus::pending: return "PENDING";
    }
    return "unknown";
}

const char* to_string(FailInfo info) {
    switch (info) {
        case FailInfo::bad_alg: return "badAlg";
        case FailInfo::bad_message_check: return "badMessageCheck";
        case FailInfo::bad_request: return "badRequest";
        case FailInfo::bad_time: return "badTime";
        case FailInfo::bad_cert_id: return "badCertId";
    }
    return "unknown";
}

PkiMessageParse parse_pki_message(std::span<const std::uint8_t> der, const PkiMessageLimits& limits) {
    OpensslErrorScope error_scope;

    const DerInputCheck input = check_der_input(der, limits.max_message_bytes);
    if (!input.ok) return PkiMessageParse::failure(input.error, input.detail);

    // Parsed straight from the caller's buffer (no BIO): the advanced cursor tells us whether
    // an indefinite-length (BER) message left bytes behind.
    const unsigned char* cursor = der.data();
    OpensslPtr<CMS_ContentInfo> cms(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der.size())));
    if (!cms) return PkiMessageParse::failure(ParseError::not_der, "not a CMS ContentInfo");
    if (cursor != der.data() + der.size())
        return PkiMessageParse::failure(ParseError::trailing_data, "bytes after the ContentInfo");
    if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed)
        return PkiMessageParse::failure(ParseError::not_signed_data, "ContentInfo is not SignedData");

    STACK_OF(CMS_SignerInfo)* signer_infos = CMS_get0_SignerInfos(cms.get());
    const int signer_count = signer_infos != nullptr ? sk_CMS_SignerInfo_num(signer_infos) : 0;
    if (signer_count <= 0) return PkiMessageParse::failure(ParseError::no_signer, "SignedData has no signerInfo");
    // Two signers could disagree on every attribute: refuse to pick one.
    if (signer_count > 1) return PkiMessageParse::failure(ParseError::multiple_signers, "more than one signerInfo");
    CMS_SignerInfo* signer_info = sk_CMS_SignerInfo_value(signer_infos, 0);

    PkiMessageInfo info;
    if (auto failure = read_scep_attributes(signer_info, limits, &info)) return std::move(*failure);

    // Attach the signer's certificate from the message's own certificate set (issuerAndSerialNumber
    // or subjectKeyIdentifier match); nothing is fetched and no chain is built.
    CMS_set1_signers_certs(cms.get(), nullptr, 0);
    X509* signer_cert = nullptr;
    CMS_SignerInfo_get0_algs(signer_info, nullptr, &signer_cert, nullptr, nullptr);
    if (signer_cert != nullptr) {
        info.signer = summarize_certificate(signer_cert);
        // Signature over the DER of the signed attributes only; the content is covered by
        // messageDigest, checked separately below. Not CMS_verify(CMS_NO_SIGNER_CERT_VERIFY):
        // it answers both questions with one bool. -1 (e.g. unusable key) counts as invalid.
        info.signature_valid = CMS_SignerInfo_verify(signer_info) == 1;
    }
    info.content_digest_valid = content_digest_matches(cms.get(), signer_info);
    return PkiMessageParse::success(std::move(info));
}

}  // namespace scepproxy::pkcs7
