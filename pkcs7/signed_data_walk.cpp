// Reaches a pkiMessage's SignedData: the DER walk to its encapContentInfo and one SignerInfo, or OpenSSL's decode.
#include "pkcs7/signed_data_walk.h"

#include <openssl/cms.h>

#include <algorithm>

namespace scepproxy::pkcs7 {

namespace {
constexpr std::uint8_t kSignedDataOid[] = {0x2A, 0x86, 0x48, 0x86, 0xF7,
                                           0x0D, 0x01, 0x07, 0x02};  // 1.2.840.113549.1.7.2
}  // namespace

bool walk_signed_data(std::span<const std::uint8_t> der, SignedDataParts* parts) {
    DerReader outer(der);
    Element content_info;
    if (!outer.next(kSequenceTag, &content_info) || !outer.done()) return false;
    DerReader ci(content_info.contents);
    Element type, explicit_content, signed_data;
    if (!ci.next(kOidTag, &type) || !ci.next(kContext0Constructed, &explicit_content) || !ci.done()) return false;
    if (type.contents.size() != sizeof(kSignedDataOid) ||
        !std::equal(type.contents.begin(), type.contents.end(), kSignedDataOid))
        return false;
    DerReader explicit_reader(explicit_content.contents);
    if (!explicit_reader.next(kSequenceTag, &signed_data) || !explicit_reader.done()) return false;

    // SignedData { version, digestAlgorithms SET, encapContentInfo SEQUENCE, [0] certificates, [1] crls, signerInfos SET }
    DerReader sd(signed_data.contents);
    Element version, digest_algorithms, signer_infos;
    std::size_t ignored = 0;
    if (!sd.next(kIntegerTag, &version) || !sd.next(kSetTag, &digest_algorithms) ||
        !sd.next(kSequenceTag, &parts->encap_content_info))
        return false;
    if (sd.next_is(kContext0Constructed)) {
        Element certificates;  // framing only: each certificate is a well-formed element
        if (!sd.next(&certificates) || !count_elements(certificates.contents, &ignored)) return false;
    }
    if (!sd.skip_optional(kContext1Constructed)) return false;
    if (!sd.next(kSetTag, &signer_infos) || !sd.done()) return false;
    DerReader signers(signer_infos.contents);
    if (!signers.next(kSequenceTag, &parts->signer_info) || !signers.done()) return false;  // none or several

    return true;
}

OpensslPtr<CMS_ContentInfo> decode_signed_data(std::span<const std::uint8_t> der, ParseError* error,
                                               const char** detail) {
    // Parsed straight from the caller's buffer (no BIO): the advanced cursor tells whether an
    // indefinite-length (BER) message left bytes behind.
    const unsigned char* cursor = der.data();
    OpensslPtr<CMS_ContentInfo> cms(d2i_CMS_ContentInfo(nullptr, &cursor, static_cast<long>(der.size())));
    if (!cms) {
        *error = ParseError::not_der;
        *detail = "not a CMS ContentInfo";
    } else if (cursor != der.data() + der.size()) {
        *error = ParseError::trailing_data;
        *detail = "bytes after the ContentInfo";
        cms.reset();
    } else if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) {
        *error = ParseError::not_signed_data;
        *detail = "ContentInfo is not SignedData";
        cms.reset();
    }
    return cms;
}

}  // namespace scepproxy::pkcs7
