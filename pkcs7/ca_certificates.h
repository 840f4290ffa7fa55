// Reads a GetCACert answer: one DER certificate, or a degenerate certs-only PKCS#7 (RA + CA certificates).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "pkcs7/certificate_summary.h"
#include "pkcs7/parse_result.h"

namespace scepproxy::pkcs7 {

// Which of the two RFC 8894 shapes the bytes had. Detected from the bytes, not the Content-Type,
// so a server that labels them wrongly still parses; the caller may compare the two.
enum class CaCertificatesFormat {
    single_certificate,  // application/x-x509-ca-cert
    pkcs7_certs_only,    // application/x-x509-ca-ra-cert
};
const char* to_string(CaCertificatesFormat format);

struct CaCertificatesLimits {
    std::size_t max_bytes = 256 * 1024;
    std::size_t max_certificates = 16;  // NDES sends 3 (RA signing, RA encryption, CA)
};

struct CaCertificates {
    CaCertificatesFormat format = CaCertificatesFormat::single_certificate;
    std::vector<CertificateSummary> certificates;  // in the order they were sent
};

using CaCertificatesParse = ParseResult<CaCertificates>;

// Errors: empty, too_large, truncated, trailing_data, not_der, not_signed_data, no_certificates,
// too_many_certificates. A PKCS#7 with signerInfos is accepted too: only its certificates are read.
CaCertificatesParse parse_ca_certificates(std::span<const std::uint8_t> der, const CaCertificatesLimits& limits = {});

}  // namespace scepproxy::pkcs7
