// Reads a GetCACert answer: one DER certificate, or a degenerate certs-only PKCS#7 (RA + CA certificates).
#include "pkcs7/ca_certificates.h"

#include <openssl/objects.h>

#include "pkcs7/der_input.h"
#include "pkcs7/openssl_raii.h"

namespace scepproxy::pkcs7 {

namespace {

// d2i_* over the whole input; nullptr unless it parses and consumes every byte.
template <typename T, typename Decode>
OpensslPtr<T> decode_whole(std::span<const std::uint8_t> der, Decode decode) {
    const unsigned char* cursor = der.data();
    OpensslPtr<T> object(decode(nullptr, &cursor, static_cast<long>(der.size())));
    if (object && cursor != der.data() + der.size()) object.reset();
    return object;
}

CaCertificatesParse from_pkcs7(CMS_ContentInfo* cms, const CaCertificatesLimits& limits) {
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
        return CaCertificatesParse::failure(ParseError::not_signed_data, "ContentInfo is not SignedData");
    OpensslPtr<STACK_OF(X509)> certs(CMS_get1_certs(cms));
    const int count = certs ? sk_X509_num(certs.get()) : 0;
    if (count <= 0) return CaCertificatesParse::failure(ParseError::no_certificates, "PKCS#7 holds no certificate");
    if (static_cast<std::size_t>(count) > limits.max_certificates)
        return CaCertificatesParse::failure(ParseError::too_many_certificates, "over the certificate limit");
    CaCertificates result;
    result.format = CaCertificatesFormat::pkcs7_certs_only;
    for (int i = 0; i < count; ++i) result.certificates.push_back(summarize_certificate(sk_X509_value(certs.get(), i)));
    return CaCertificatesParse::success(std::move(result));
}

}  // namespace

const char* to_string(CaCertificatesFormat format) {
    switch (format) {
        case CaCertificatesFormat::single_certificate: return "single_certificate";
        case CaCertificatesFormat::pkcs7_certs_only: return "pkcs7_certs_only";
    }
    return "unknown";
}

CaCertificatesParse parse_ca_certificates(std::span<const std::uint8_t> der, const CaCertificatesLimits& limits) {
    OpensslErrorScope error_scope;

    const DerInputCheck input = check_der_input(der, limits.max_bytes);
    if (!input.ok) return CaCertificatesParse::failure(input.error, input.detail);

    if (auto cert = decode_whole<X509>(der, d2i_X509)) {
        if (limits.max_certificates < 1)
            return CaCertificatesParse::failure(ParseError::too_many_certificates, "over the certificate limit");
        CaCertificates result;
        result.format = CaCertificatesFormat::single_certificate;
        result.certificates.push_back(summarize_certificate(cert.get()));
        return CaCertificatesParse::success(std::move(result));
    }
    if (auto cms = decode_whole<CMS_ContentInfo>(der, d2i_CMS_ContentInfo)) return from_pkcs7(cms.get(), limits);
    return CaCertificatesParse::failure(ParseError::not_der, "neither a certificate nor a CMS ContentInfo");
}

}  // namespace scepproxy::pkcs7
