// Reads the recipients of a pkiMessage's EnvelopedData: a DER walk, OpenSSL's CMS parser for BER; matches them to certificates.
#include "pkcs7/envelope_recipients.h"

#include <openssl/cms.h>

#include <algorithm>
#include <optional>

#include "pkcs7/certificate_summary.h"
#include "pkcs7/der_input.h"
#include "pkcs7/der_reader.h"
#include "pkcs7/openssl_raii.h"
#include "pkcs7/signed_data_walk.h"

namespace scepproxy::pkcs7 {

namespace {

constexpr std::uint8_t kEnvelopedDataOid[] = {0x2A, 0x86, 0x48, 0x86, 0xF7,
                                              0x0D, 0x01, 0x07, 0x03};  // 1.2.840.113549.1.7.3

enum class Walk { read, leave_to_openssl };

// Checks one recipient's fields against the limits and keeps it.
std::optional<EnvelopeRecipientsParse> add_recipient(RecipientId recipient, const EnvelopeLimits& limits,
                                                     EnvelopeRecipients* recipients) {
    if (recipients->key_transport.size() + recipients->other_recipients >= limits.max_recipients)
        return EnvelopeRecipientsParse::failure(ParseError::too_many_recipients, "more recipientInfos than the limit");
    if (recipient.kind == RecipientIdKind::issuer_and_serial) {
        if (recipient.issuer.empty() || recipient.issuer.size() > limits.max_issuer_bytes)
            return EnvelopeRecipientsParse::failure(ParseError::bad_recipient, "recipient issuer: empty or too long");
        if (recipient.serial.empty() || recipient.serial.size() > limits.max_serial_bytes)
            return EnvelopeRecipientsParse::failure(ParseError::bad_recipient, "recipient serial: empty or too long");
    } else if (recipient.subject_key_id.empty() || recipient.subject_key_id.size() > limits.max_key_id_bytes) {
        return EnvelopeRecipientsParse::failure(ParseError::bad_recipient,
                                                "recipient key identifier: empty or too long");
    }
    recipients->key_transport.push_back(std::move(recipient));
    return std::nullopt;
}

std::optional<EnvelopeRecipientsParse> add_other_recipient(const EnvelopeLimits& limits,
                                                           EnvelopeRecipients* recipients) {
    if (recipients->key_transport.size() + recipients->other_recipients >= limits.max_recipients)
        return EnvelopeRecipientsParse::failure(ParseError::too_many_recipients, "more recipientInfos than the limit");
    ++recipients->other_recipients;
    return std::nullopt;
}

// KeyTransRecipientInfo { version, rid, keyEncryptionAlgorithm, encryptedKey }; rid is
// IssuerAndSerialNumber { Name, INTEGER } or [0] IMPLICIT SubjectKeyIdentifier.
Walk read_key_transport(std::span<const std::uint8_t> contents, RecipientId* recipient) {
    DerReader ktri(contents);
    Element version, rid, algorithm, encrypted_key;
    if (!ktri.next(kIntegerTag, &version) || !ktri.next(&rid) || !ktri.next(kSequenceTag, &algorithm) ||
        !ktri.next(kOctetStringTag, &encrypted_key) || !ktri.done())
        return Walk::leave_to_openssl;
    if (rid.tag == kContext0Primitive) {
        recipient->kind = RecipientIdKind::subject_key_id;
        recipient->subject_key_id.assign(rid.contents.begin(), rid.contents.end());
        return Walk::read;
    }
    if (rid.tag != kSequenceTag) return Walk::leave_to_openssl;
    DerReader ias(rid.contents);
    Element issuer, serial;
    if (!ias.next(kSequenceTag, &issuer) || !ias.next(kIntegerTag, &serial) || !ias.done())
        return Walk::leave_to_openssl;
    recipient->kind = RecipientIdKind::issuer_and_serial;
    recipient->issuer.assign(issuer.whole.begin(), issuer.whole.end());
    recipient->serial.assign(serial.contents.begin(), serial.contents.end());
    return Walk::read;
}

// ContentInfo { id-envelopedData, [0] EXPLICIT EnvelopedData { version, [0] originatorInfo,
// recipientInfos SET, encryptedContentInfo, [1] unprotectedAttrs } }.
Walk walk_envelope(std::span<const std::uint8_t> der, const EnvelopeLimits& limits, EnvelopeRecipients* recipients,
                   std::optional<EnvelopeRecipientsParse>* failure) {
    DerReader outer(der);
    Element content_info;
    if (!outer.next(kSequenceTag, &content_info) || !outer.done()) return Walk::leave_to_openssl;
    DerReader ci(content_info.contents);
    Element type, explicit_content, enveloped;
    if (!ci.next(kOidTag, &type) || !ci.next(kContext0Constructed, &explicit_content) || !ci.done())
        return Walk::leave_to_openssl;
    if (!std::equal(type.contents.begin(), type.contents.end(), std::begin(kEnvelopedDataOid),
                    std::end(kEnvelopedDataOid))) {
        *failure = EnvelopeRecipientsParse::failure(ParseError::not_enveloped_data, "content is not EnvelopedData");
        return Walk::read;
    }
    DerReader explicit_reader(explicit_content.contents);
    if (!explicit_reader.next(kSequenceTag, &enveloped) || !explicit_reader.done()) return Walk::leave_to_openssl;
    DerReader ed(enveloped.contents);
    Element version, recipient_infos, encrypted_content;
    if (!ed.next(kIntegerTag, &version) || !ed.skip_optional(kContext0Constructed) ||
        !ed.next(kSetTag, &recipient_infos) || !ed.next(kSequenceTag, &encrypted_content) ||
        !ed.skip_optional(kContext1Constructed) || !ed.done())
        return Walk::leave_to_openssl;

    DerReader infos(recipient_infos.contents);
    Element info;
    while (!infos.done()) {
        if (!infos.next(&info)) return Walk::leave_to_openssl;
        if (info.tag == kSequenceTag) {
            RecipientId recipient;
            if (read_key_transport(info.contents, &recipient) == Walk::leave_to_openssl) return Walk::leave_to_openssl;
            *failure = add_recipient(std::move(recipient), limits, recipients);
        } else if (info.tag >= 0xA1 && info.tag <= 0xA4) {  // kari [1], kekri [2], pwri [3], ori [4]
            *failure = add_other_recipient(limits, recipients);
        } else {
            return Walk::leave_to_openssl;
        }
        if (*failure) return Walk::read;
    }
    if (recipients->key_transport.empty() && recipients->other_recipients == 0)
        *failure = EnvelopeRecipientsParse::failure(ParseError::bad_recipient, "EnvelopedData without recipientInfos");
    return Walk::read;
}

std::vector<std::uint8_t> bytes_of(const ASN1_STRING* string) {
    const unsigned char* data = ASN1_STRING_get0_data(string);
    return {data, data + ASN1_STRING_length(string)};
}

// BER that the walk doesn't follow: an EnvelopedData decoded by OpenSSL.
EnvelopeRecipientsParse recipients_with_openssl(std::span<const std::uint8_t> envelope, const EnvelopeLimits& limits) {
    const unsigned char* cursor = envelope.data();
    OpensslPtr<CMS_ContentInfo> cms(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(envelope.size())));
    if (!cms || cursor != envelope.data() + envelope.size())
        return EnvelopeRecipientsParse::failure(ParseError::not_enveloped_data, "content is not a CMS ContentInfo");
    if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_enveloped)
        return EnvelopeRecipientsParse::failure(ParseError::not_enveloped_data, "content is not EnvelopedData");
    STACK_OF(CMS_RecipientInfo)* infos = CMS_get0_RecipientInfos(cms.get());
    const int count = infos != nullptr ? sk_CMS_RecipientInfo_num(infos) : 0;
    if (count <= 0)
        return EnvelopeRecipientsParse::failure(ParseError::bad_recipient, "EnvelopedData without recipientInfos");
    EnvelopeRecipients recipients;
    for (int i = 0; i < count; ++i) {
        CMS_RecipientInfo* info = sk_CMS_RecipientInfo_value(infos, i);
        std::optional<EnvelopeRecipientsParse> failure;
        if (CMS_RecipientInfo_type(info) != CMS_RECIPINFO_TRANS) {
            failure = add_other_recipient(limits, &recipients);
        } else {
            ASN1_OCTET_STRING* key_id = nullptr;
            X509_NAME* issuer = nullptr;
            ASN1_INTEGER* serial = nullptr;
            if (CMS_RecipientInfo_ktri_get0_signer_id(info, &key_id, &issuer, &serial) != 1)
                return EnvelopeRecipientsParse::failure(ParseError::bad_recipient, "unreadable recipient identifier");
            RecipientId recipient;
            if (key_id != nullptr) {
                recipient.kind = RecipientIdKind::subject_key_id;
                recipient.subject_key_id = bytes_of(key_id);
            } else {
                const unsigned char* name_der = nullptr;
                std::size_t name_length = 0;
                std::vector<std::uint8_t> serial_contents = integer_der_contents(serial);
                if (issuer == nullptr || X509_NAME_get0_der(issuer, &name_der, &name_length) != 1 ||
                    serial_contents.empty())
                    return EnvelopeRecipientsParse::failure(ParseError::bad_recipient,
                                                            "unreadable recipient identifier");
                recipient.issuer.assign(name_der, name_der + name_length);
                recipient.serial = std::move(serial_contents);
            }
            failure = add_recipient(std::move(recipient), limits, &recipients);
        }
        if (failure) return std::move(*failure);
    }
    return EnvelopeRecipientsParse::success(std::move(recipients));
}

EnvelopeRecipientsParse read_envelope(std::span<const std::uint8_t> envelope, const EnvelopeLimits& limits) {
    EnvelopeRecipients recipients;
    std::optional<EnvelopeRecipientsParse> failure;
    if (walk_envelope(envelope, limits, &recipients, &failure) == Walk::read) {
        if (failure) return std::move(*failure);
        return EnvelopeRecipientsParse::success(std::move(recipients));
    }
    return recipients_with_openssl(envelope, limits);
}

// The pkiMessage is BER somewhere: OpenSSL finds the encapsulated content.
EnvelopeRecipientsParse envelope_with_openssl(std::span<const std::uint8_t> der, const EnvelopeLimits& limits) {
    ParseError error = ParseError::not_der;
    const char* detail = "";
    OpensslPtr<CMS_ContentInfo> cms = decode_signed_data(der, &error, &detail);
    if (!cms) return EnvelopeRecipientsParse::failure(error, detail);
    ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
    if (content == nullptr || *content == nullptr || ASN1_STRING_length(*content) == 0)
        return EnvelopeRecipientsParse::failure(ParseError::no_envelope, "no encapsulated content");
    const std::vector<std::uint8_t> envelope = bytes_of(*content);
    return read_envelope(envelope, limits);
}

}  // namespace

EnvelopeRecipientsParse read_envelope_recipients(std::span<const std::uint8_t> pki_message,
                                                 const EnvelopeLimits& limits) {
    OpensslErrorScope error_scope;
    const DerInputCheck input = check_der_input(pki_message, limits.max_message_bytes);
    if (!input.ok) return EnvelopeRecipientsParse::failure(input.error, input.detail);

    SignedDataParts parts;
    if (!walk_signed_data(pki_message, &parts)) return envelope_with_openssl(pki_message, limits);
    // EncapsulatedContentInfo { eContentType OID, [0] EXPLICIT OCTET STRING OPTIONAL }
    DerReader encap(parts.encap_content_info.contents);
    Element content_type, explicit_content, octets;
    if (!encap.next(kOidTag, &content_type)) return envelope_with_openssl(pki_message, limits);
    if (encap.done()) return EnvelopeRecipientsParse::failure(ParseError::no_envelope, "no encapsulated content");
    if (!encap.next(kContext0Constructed, &explicit_content) || !encap.done())
        return envelope_with_openssl(pki_message, limits);
    DerReader explicit_reader(explicit_content.contents);
    // A constructed (BER) OCTET STRING comes in pieces: OpenSSL joins them.
    if (!explicit_reader.next(kOctetStringTag, &octets) || !explicit_reader.done())
        return envelope_with_openssl(pki_message, limits);
    if (octets.contents.empty()) return EnvelopeRecipientsParse::failure(ParseError::no_envelope, "empty content");
    return read_envelope(octets.contents, limits);
}

bool names_certificate(const RecipientId& recipient, const CertificateSummary& certificate) {
    if (recipient.kind == RecipientIdKind::subject_key_id)
        return !certificate.subject_key_id.empty() && recipient.subject_key_id == certificate.subject_key_id;
    return recipient.issuer == certificate.issuer_der && recipient.serial == certificate.serial_der;
}

std::string describe(const RecipientId& recipient) {
    if (recipient.kind == RecipientIdKind::subject_key_id)
        return "subject_key_id=" + hex_text(recipient.subject_key_id);
    OpensslErrorScope error_scope;
    const unsigned char* cursor = recipient.issuer.data();
    OpensslPtr<X509_NAME> name(d2i_X509_NAME(nullptr, &cursor, static_cast<long>(recipient.issuer.size())));
    // The serial's contents re-framed as an INTEGER (short form: at most max_serial_bytes).
    std::vector<std::uint8_t> integer{kIntegerTag, static_cast<std::uint8_t>(recipient.serial.size())};
    integer.insert(integer.end(), recipient.serial.begin(), recipient.serial.end());
    cursor = integer.data();
    OpensslPtr<ASN1_INTEGER> serial(recipient.serial.size() < 0x80
                                        ? d2i_ASN1_INTEGER(nullptr, &cursor, static_cast<long>(integer.size()))
                                        : nullptr);
    return "issuer=" + (name ? one_line_name(name.get()) : std::string("?")) +
           " serial=" + (serial ? serial_hex(serial.get()) : hex_text(recipient.serial));
}

}  // namespace scepproxy::pkcs7
