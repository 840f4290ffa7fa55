// Reads a pkiMessage's SCEP signed attributes by walking its DER, without decoding certificates or verifying anything.
//
// The request path needs only messageType and transactionID (and a CertRep's pkiStatus and
// failInfo); decoding the whole CMS with OpenSSL decodes every certificate's public key, which
// costs far more than the rest of a proxied request. This walk follows the definite-length DER
// from ContentInfo down to the one signerInfo's signedAttrs, checking that every element it
// passes lies exactly within its parent, and hands each SCEP attribute's value to the same rules
// as the full parse. Anything else (BER indefinite lengths, an unexpected shape, any error) is
// left to parse_pki_message, so its errors are the full parse's own.
#include <algorithm>

#include <openssl/asn1.h>

#include "pkcs7/der_input.h"
#include "pkcs7/openssl_raii.h"
#include "pkcs7/pki_message.h"
#include "pkcs7/scep_attributes.h"

namespace scepproxy::pkcs7 {

namespace {

constexpr std::uint8_t kIntegerTag = 0x02;
constexpr std::uint8_t kOctetStringTag = 0x04;
constexpr std::uint8_t kOidTag = 0x06;
constexpr std::uint8_t kSequenceTag = 0x30;
constexpr std::uint8_t kSetTag = 0x31;
constexpr std::uint8_t kContext0Constructed = 0xA0;  // [0]: content, certificates, signedAttrs
constexpr std::uint8_t kContext1Constructed = 0xA1;  // [1]: crls, unsignedAttrs
constexpr std::uint8_t kContext0Primitive = 0x80;    // [0] IMPLICIT subjectKeyIdentifier
constexpr std::uint8_t kSignedDataOid[] = {0x2A, 0x86, 0x48, 0x86, 0xF7,
                                           0x0D, 0x01, 0x07, 0x02};  // 1.2.840.113549.1.7.2

// One element: its tag, its whole encoding and its contents.
struct Element {
    std::uint8_t tag = 0;
    std::span<const std::uint8_t> whole;
    std::span<const std::uint8_t> contents;
};

// Reads elements one after another from a span. Only low tag numbers and definite lengths: a
// false from next() sends the message to the full parse.
class DerReader {
public:
    explicit DerReader(std::span<const std::uint8_t> input) : rest_(input) {}

    bool done() const { return rest_.empty(); }
    bool next_is(std::uint8_t tag) const { return !rest_.empty() && rest_[0] == tag; }

    bool next(Element* element) {
        if (rest_.size() < 2 || (rest_[0] & 0x1f) == 0x1f) return false;
        std::size_t header = 2;
        std::size_t length = rest_[1];
        if (length == 0x80) return false;  // indefinite (BER)
        if (length > 0x80) {
            const std::size_t octets = length & 0x7f;
            if (octets > 4 || rest_.size() < 2 + octets) return false;
            length = 0;
            for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | rest_[2 + i];
            header += octets;
        }
        if (length > rest_.size() - header) return false;
        element->tag = rest_[0];
        element->whole = rest_.first(header + length);
        element->contents = rest_.subspan(header, length);
        rest_ = rest_.subspan(header + length);
        return true;
    }

    bool next(std::uint8_t tag, Element* element) { return next(element) && element->tag == tag; }

    // Skips an element if it has this tag.
    bool skip_optional(std::uint8_t tag) {
        if (!next_is(tag)) return true;
        Element ignored;
        return next(&ignored);
    }

private:
    std::span<const std::uint8_t> rest_;
};

// Every element of a SET or SEQUENCE is well-framed; counts them.
bool count_elements(std::span<const std::uint8_t> contents, std::size_t* count) {
    DerReader reader(contents);
    *count = 0;
    Element element;
    while (!reader.done()) {
        if (!reader.next(&element)) return false;
        ++*count;
    }
    return true;
}

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

// ContentInfo { contentType OID, [0] EXPLICIT SignedData } down to the one SignerInfo's signedAttrs.
Walk walk(std::span<const std::uint8_t> der, const PkiMessageLimits& limits, PkiMessageInfo* info,
          std::optional<PkiMessageParse>* failure) {
    DerReader outer(der);
    Element content_info;
    if (!outer.next(kSequenceTag, &content_info) || !outer.done()) return Walk::leave_to_full_parse;
    DerReader ci(content_info.contents);
    Element type, explicit_content, signed_data;
    if (!ci.next(kOidTag, &type) || !ci.next(kContext0Constructed, &explicit_content) || !ci.done())
        return Walk::leave_to_full_parse;
    if (type.contents.size() != sizeof(kSignedDataOid) ||
        !std::equal(type.contents.begin(), type.contents.end(), kSignedDataOid))
        return Walk::leave_to_full_parse;
    DerReader explicit_reader(explicit_content.contents);
    if (!explicit_reader.next(kSequenceTag, &signed_data) || !explicit_reader.done()) return Walk::leave_to_full_parse;

    // SignedData { version, digestAlgorithms SET, encapContentInfo SEQUENCE, [0] certificates, [1] crls, signerInfos SET }
    DerReader sd(signed_data.contents);
    Element version, digest_algorithms, encap, signer_infos;
    std::size_t ignored = 0;
    if (!sd.next(kIntegerTag, &version) || !sd.next(kSetTag, &digest_algorithms) || !sd.next(kSequenceTag, &encap))
        return Walk::leave_to_full_parse;
    if (sd.next_is(kContext0Constructed)) {
        Element certificates;  // framing only: each certificate is a well-formed element
        if (!sd.next(&certificates) || !count_elements(certificates.contents, &ignored))
            return Walk::leave_to_full_parse;
    }
    if (!sd.skip_optional(kContext1Constructed)) return Walk::leave_to_full_parse;
    if (!sd.next(kSetTag, &signer_infos) || !sd.done()) return Walk::leave_to_full_parse;
    DerReader signers(signer_infos.contents);
    Element signer_info;
    if (!signers.next(kSequenceTag, &signer_info) || !signers.done())
        return Walk::leave_to_full_parse;  // none or several

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
    info = std::move(*parsed.value);
    // The same answer whichever way it was read: nothing verified.
    info.signer.reset();
    info.signature_valid = false;
    info.content_digest_valid = false;
    return std::nullopt;
}

PkiMessageParse read_pki_message_attributes(std::span<const std::uint8_t> der, const PkiMessageLimits& limits) {
    PkiMessageInfo info;
    if (std::optional<PkiMessageParse> failure = read_pki_message_attributes_into(der, limits, info))
        return std::move(*failure);
    return PkiMessageParse::success(std::move(info));
}

}  // namespace scepproxy::pkcs7
