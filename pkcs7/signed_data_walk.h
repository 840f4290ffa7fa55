// The DER walk from a pkiMessage's ContentInfo to its SignedData parts, without OpenSSL (internal to pkcs7/).
//
// Shared by the readers of the signed attributes and of the envelope's recipients: both follow
// the same definite-length path and leave anything else to OpenSSL's full parse.
#pragma once

#include <cstdint>
#include <span>

#include "pkcs7/der_reader.h"

namespace scepproxy::pkcs7 {

struct SignedDataParts {
    Element encap_content_info;  // EncapsulatedContentInfo { eContentType, [0] EXPLICIT eContent OPTIONAL }
    Element signer_info;         // the one SignerInfo
};

// ContentInfo { id-signedData, [0] EXPLICIT SignedData { version, digestAlgorithms,
// encapContentInfo, [0] certificates, [1] crls, signerInfos } } with exactly one signerInfo,
// every element exactly within its parent. False: not that shape (or not DER): use OpenSSL.
bool walk_signed_data(std::span<const std::uint8_t> der, SignedDataParts* parts);

}  // namespace scepproxy::pkcs7
