// Read-only inspection of a SCEP pkiMessage: the signed attributes and signer certificate shown in the clear.
#include "pkcs7/pki_message.h"

#include <cstring>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "pkcs7/der_input.h"
#include "pkcs7/openssl_raii.h"
#include "pkcs7/scep_attributes.h"
#include "pkcs7/signed_data_walk.h"

namespace scepproxy::pkcs7 {

namespace {

// Fills info from the SCEP signed attributes; returns the failure, or nullopt when all are well-formed.
std::optional<PkiMessageParse> read_scep_attributes(const CMS_SignerInfo* signer_info, const PkiMessageLimits& limits,
                                                    PkiMessageInfo* info) {
    ScepAttributeCollector collector(limits, info);
    const int count = CMS_signed_get_attr_count(signer_info);  // -1 when there are no signed attributes
    for (int i = 0; i < count; ++i) {
        X509_ATTRIBUTE* attribute = CMS_signed_get_attr(signer_info, i);
        if (attribute == nullptr) continue;
        const ASN1_OBJECT* oid = X509_ATTRIBUTE_get0_object(attribute);
        const unsigned char* oid_data = OBJ_get0_data(oid);
        if (oid_data == nullptr) continue;
        const ScepAttribute which = identify_attribute(std::span<const std::uint8_t>(oid_data, OBJ_length(oid)));
        if (which == ScepAttribute::other) continue;
        const int values = X509_ATTRIBUTE_count(attribute);
        if (auto failure = collector.add(which, values, values == 1 ? X509_ATTRIBUTE_get0_type(attribute, 0) : nullptr))
            return failure;
    }
    return collector.finish();
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

    ParseError error = ParseError::not_der;
    const char* detail = "";
    OpensslPtr<CMS_ContentInfo> cms = decode_signed_data(der, &error, &detail);
    if (!cms) return PkiMessageParse::failure(error, detail);

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
    info.verified = true;
    return PkiMessageParse::success(std::move(info));
}

}  // namespace scepproxy::pkcs7
