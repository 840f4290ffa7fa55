// Fuzz target: pkcs7::parse_ca_certificates (GetCACert answers) on arbitrary bytes never crashes, leaves OpenSSL's error queue empty, and keeps its limits.
#include <openssl/err.h>

#include <span>

#include "pkcs7/ca_certificates.h"
#include "test/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy::pkcs7;
    const CaCertificatesLimits limits;
    const CaCertificatesParse result = parse_ca_certificates(std::span<const uint8_t>(data, size), limits);
    FUZZ_CHECK(ERR_peek_error() == 0, "OpenSSL's error queue is not empty");
    if (!result.ok()) {
        FUZZ_CHECK(to_string(result.error) != nullptr && *to_string(result.error) != '\0', "no reason code");
        return 0;
    }
    const CaCertificates& certificates = *result.value;
    FUZZ_CHECK(!certificates.certificates.empty(), "success without a certificate");
    FUZZ_CHECK(certificates.certificates.size() <= limits.max_certificates, "more certificates than the limit");
    if (certificates.format == CaCertificatesFormat::single_certificate) {
        FUZZ_CHECK(certificates.certificates.size() == 1, "a single certificate that is several");
    }
    for (const CertificateSummary& certificate : certificates.certificates) {
        FUZZ_CHECK(certificate.sha256_fingerprint.size() == 32 * 3 - 1, "a certificate without its fingerprint");
        FUZZ_CHECK((certificate.role == CertificateRole::ca) == certificate.is_ca,
                   "the CA role is not basicConstraints");
    }
    return 0;
}
