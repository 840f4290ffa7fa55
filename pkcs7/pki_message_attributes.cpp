// Reads a pkiMessage's SCEP signed attributes by walking its DER, without decoding certificates or verifying anything.
//
// The request path needs only messageType and transactionID (and a CertRep's pkiStatus and
// failInfo); decoding the whole CMS with OpenSSL decodes every certificate's public key, which
// costs far more than the rest of a proxied request. This walk follows the definite-length DER
// from ContentInfo down to the one signerInfo's signedAttrs, checking that every element it
// passes lies exactly within its parent, and hands each SCEP attribute's value to the same rules
// as the full parse. Anything else (BER indefinite lengths, an unexpected shape, any error) is
// left to parse_pki_message, so its errors are the full parse's own (and its verdict is kept).
#include <openssl/asn1.h>

#include "pkcs7/der_input.h"
#include "pkcs7/der_reader.h"
#include "pkcs7/openssl_raii.h"
#include "pkcs7/pki_message.h"
#include "pkcs7/scep_attributes.h"
#include "pkcs7/signed_data_walk.h"

namespace scepproxy::pkcs7 {

namespace {

enum class Walk { read, leave_to_full_parse };

// An attribute value as OpenSSL's ASN1_TYPE, for the attribute rules both readers share.
// The string types SCEP values come in (PrintableString, IA5String, UTF8String, OCTET
// STRING) point into the message in place: d2i_ASN1_TYPE would allocate and copy each one,
// and was most of the walk's cost. Anything else is decoded by OpenSSL.
class AttributeValue {
public:
    // `der`: exactly one well-framed element. False when OpenSSL can't decode it.
    bool read(std::span<const std::uint8_t> der) {
        DerReader reader(der);
        Element element;
        if (reader.next(&element) && in_place_type(element.tag)) {
            string_.type = element.tag;  // the universal tag number is OpenSSL's V_ASN1_* type
            string_.length = static_cast<int>(element.contents.size());
            string_.data = const_cast<unsigned char*>(element.contents.data());  // read only
            in_place_.type = element.tag;
            in_place_.value.asn1_string = &string_;
            value_ = &in_place_;
            return true;
        }
        OpensslErrorScope error_scope;  // only here: the walk itself calls no OpenSSL
        const unsigned char* cursor = der.data();
        decoded_.reset(d2i_ASN1_TYPE(nullptr, &cursor, static_cast<long>(der.size())));
        value_ = decoded_.get();
        return value_ != nullptr;
    }

    const ASN1_TYPE* get() const { return value_; }

private:
    static bool in_place_type(std::uint8_t tag) {
        return tag == V_ASN1_PRINTABLESTRING || tag == V_ASN1_IA5STRING || tag == V_ASN1_UTF8STRING ||
               tag == V_ASN1_OCTET_STRING;
    }

    ASN1_STRING string_{};
    ASN1_TYPE in_place_{};
    OpensslPtr<ASN1_TYPE> decoded_;
    const ASN1_TYPE* value_ = nullptr;
};

// The SignerInfo's signedAttrs: [0] IMPLICIT SET OF Attribute { attrType OID, attrValues SET }.
Walk read_signed_attributes(std::span<const std::uint8_t> attributes, const PkiMessageLimits& limits,
                            PkiMessageInfo* info, std::optional<PkiMessageParse>* failure) {
    ScepAttributeCollector collector(limits, info);
    DerReader reader(attributes);
    Element attribute;
    while (!reader.done()) {
        if (!reader.next(kSequenceTag, &attribute)) return Walk::leave_to_full_parse;
        DerReader fields(attribute.contents);
        Element oid, values;
        if (!fields.next(kOidTag, &oid) || !fields.next(kSetTag, &values) || !fields.done())
            return Walk::leave_to_full_parse;
        const ScepAttribute which = identify_attribute(oid.contents);
        std::size_t value_count = 0;
        if (!count_elements(values.contents, &value_count)) return Walk::leave_to_full_parse;
        if (which == ScepAttribute::other) continue;
        AttributeValue value;
        if (value_count == 1 && !value.read(values.contents)) return Walk::leave_to_full_parse;
        *failure = collector.add(which, static_cast<int>(value_count), value.get());
        if (*failure) return Walk::read;
    }
    *failure = collector.finish();
    return Walk::read;
}

// The one SignerInfo's signedAttrs, reached through the SignedData walk.
Walk walk(std::span<const std::uint8_t> der, const PkiMessageLimits& limits, PkiMessageInfo* info,
          std::optional<PkiMessageParse>* failure) {
    SignedDataParts parts;
    if (!walk_signed_data(der, &parts)) return Walk::leave_to_full_parse;
    const Element& signer_info = parts.signer_info;

    // SignerInfo { version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, [1] unsignedAttrs }
    DerReader si(signer_info.contents);
    Element signer_version, sid, digest_algorithm, signed_attributes, signature_algorithm, signature;
    if (!si.next(kIntegerTag, &signer_version) || !si.next(&sid) ||
        (sid.tag != kSequenceTag && sid.tag != kContext0Primitive) || !si.next(kSequenceTag, &digest_algorithm) ||
        !si.next(kContext0Constructed, &signed_attributes) || !si.next(kSequenceTag, &signature_algorithm) ||
        !si.next(kOctetStringTag, &signature) || !si.skip_optional(kContext1Constructed) || !si.done())
        return Walk::leave_to_full_parse;
    return read_signed_attributes(signed_attributes.contents, limits, info, failure);
}

// Empties `info` for the next message, keeping what the buffers the walk fills have allocated;
// every other member (one added later too) is reset by assigning a fresh PkiMessageInfo.
void clear_keeping_capacity(PkiMessageInfo& info) {
    std::string transaction_id = std::move(info.transaction_id);
    std::vector<std::uint8_t> sender_nonce = std::move(info.sender_nonce);
    std::vector<std::uint8_t> recipient_nonce = std::move(info.recipient_nonce);
    info = PkiMessageInfo{};
    transaction_id.clear();
    sender_nonce.clear();
    recipient_nonce.clear();
    info.transaction_id = std::move(transaction_id);
    info.sender_nonce = std::move(sender_nonce);
    info.recipient_nonce = std::move(recipient_nonce);
}

}  // namespace

std::optional<PkiMessageParse> read_pki_message_attributes_into(std::span<const std::uint8_t> der,
                                                                const PkiMessageLimits& limits, PkiMessageInfo& info) {
    const DerInputCheck input = check_der_input(der, limits.max_message_bytes);
    if (!input.ok) return PkiMessageParse::failure(input.error, input.detail);

    clear_keeping_capacity(info);
    std::optional<PkiMessageParse> failure;
    if (walk(der, limits, &info, &failure) == Walk::read) return failure;
    PkiMessageParse parsed = parse_pki_message(der, limits);
    if (!parsed.ok()) return parsed;
    // Kept whole, verdict included: the slow path is paid for once.
    info = std::move(*parsed.value);
    return std::nullopt;
}

PkiMessageParse read_pki_message_attributes(std::span<const std::uint8_t> der, const PkiMessageLimits& limits) {
    PkiMessageInfo info;
    if (std::optional<PkiMessageParse> failure = read_pki_message_attributes_into(der, limits, info))
        return std::move(*failure);
    return PkiMessageParse::success(std::move(info));
}

}  // namespace scepproxy::pkcs7
