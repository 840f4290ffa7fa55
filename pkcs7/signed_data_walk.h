// Reaching a pkiMessage's SignedData: a DER walk without OpenSSL, or OpenSSL's decode for BER (internal to pkcs7/).
//
// Shared by the readers of the signed attributes and of the envelope's recipients: both follow
// the same definite-length path and leave anything else to OpenSSL's full parse.
#pragma once

#include <cstdint>
#include <span>

#include "pkcs7/der_reader.h"
#include "pkcs7/openssl_raii.h"
#include "pkcs7/parse_result.h"

namespace scepproxy::pkcs7 {

struct SignedDataParts {
    Element encap_content_info;  // EncapsulatedContentInfo { eContentType, [0] EXPLICIT eContent OPTIONAL }
    Element signer_info;         // the one SignerInfo
};

// ContentInfo { id-signedData, [0] EXPLICIT SignedData { version, digestAlgorithms,
// encapContentInfo, [0] certificates, [1] crls, signerInfos } } with exactly one signerInfo,
// every element exactly within its parent. False: not that shape (or not DER): use OpenSSL.
bool walk_signed_data(std::span<const std::uint8_t> der, SignedDataParts* parts);

// OpenSSL's decode of the whole input as a CMS ContentInfo of type SignedData. nullptr and
// *failure set (not_der, trailing_data or not_signed_data, with a detail) when it isn't one.
OpensslPtr<CMS_ContentInfo> decode_signed_data(std::span<const std::uint8_t> der, ParseError* error,
                                               const char** detail);

}  // namespace scepproxy::pkcs7
