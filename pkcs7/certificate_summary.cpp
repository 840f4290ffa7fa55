// CertificateSummary: what the proxy logs and checks about an X.509 certificate (names, serial, validity, CA, key usage).
#include "pkcs7/certificate_summary.h"

#include <ctime>

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "pkcs7/openssl_raii.h"

namespace scepproxy::pkcs7 {

std::string one_line_name(const X509_NAME* name) {
    if (name == nullptr) return {};
    OpensslPtr<BIO> bio(BIO_new(BIO_s_mem()));
    // XN_FLAG_RFC2253 escapes control characters and every byte >= 0x80: the result is plain
    // ASCII and safe to put in a log line, whatever the certificate holds.
    if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio.get(), &data);
    return length > 0 ? std::string(data, static_cast<std::size_t>(length)) : std::string();
}

std::string serial_hex(const ASN1_INTEGER* serial) {
    if (serial == nullptr) return {};
    OpensslPtr<BIGNUM> number(ASN1_INTEGER_to_BN(serial, nullptr));
    if (!number) return {};
    OpensslPtr<char> hex(BN_bn2hex(number.get()));
    return hex ? std::string(hex.get()) : std::string();
}

std::string hex_text(std::span<const std::uint8_t> bytes, char separator) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    std::string text;
    text.reserve(bytes.size() * 3);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i != 0 && separator != '\0') text.push_back(separator);
        text.push_back(kDigits[bytes[i] >> 4]);
        text.push_back(kDigits[bytes[i] & 0x0f]);
    }
    return text;
}

std::vector<std::uint8_t> integer_der_contents(const ASN1_INTEGER* integer) {
    if (integer == nullptr) return {};
    const int length = i2d_ASN1_INTEGER(integer, nullptr);
    if (length <= 2) return {};
    std::vector<std::uint8_t> der(static_cast<std::size_t>(length));
    unsigned char* cursor = der.data();
    i2d_ASN1_INTEGER(integer, &cursor);
    // Tag, then a short or long form length: the contents are the last bytes.
    const std::size_t header = der[1] < 0x80 ? 2 : 2 + (der[1] & 0x7f);
    if (header >= der.size()) return {};
    der.erase(der.begin(), der.begin() + static_cast<std::ptrdiff_t>(header));
    return der;
}

namespace {

std::int64_t unix_seconds(const ASN1_TIME* time) {
    std::tm broken_down{};
    if (time == nullptr || ASN1_TIME_to_tm(time, &broken_down) != 1) return 0;
    return static_cast<std::int64_t>(timegm(&broken_down));
}

struct KeyUsageName {
    std::uint32_t bit;
    const char* name;
};

// RFC 5280 order and names.
constexpr KeyUsageName kKeyUsageNames[] = {
    {KU_DIGITAL_SIGNATURE, "digitalSignature"},
    {KU_NON_REPUDIATION, "nonRepudiation"},
    {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
    {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {KU_KEY_AGREEMENT, "keyAgreement"},
    {KU_KEY_CERT_SIGN, "keyCertSign"},
    {KU_CRL_SIGN, "cRLSign"},
    {KU_ENCIPHER_ONLY, "encipherOnly"},
    {KU_DECIPHER_ONLY, "decipherOnly"},
};

std::string key_usage_names(X509* cert) {
    if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0) return {};
    const std::uint32_t bits = X509_get_key_usage(cert);
    std::string names;
    for (const KeyUsageName& usage : kKeyUsageNames) {
        if ((bits & usage.bit) == 0) continue;
        if (!names.empty()) names += ',';
        names += usage.name;
    }
    return names;
}

}  // namespace

const char* to_string(CertificateRole role) {
    switch (role) {
        case CertificateRole::ca: return "ca";
        case CertificateRole::ra_signing: return "ra_signing";
        case CertificateRole::ra_encryption: return "ra_encryption";
        case CertificateRole::ra: return "ra";
    }
    return "ra";
}

namespace {

CertificateRole role_of(X509* cert, bool is_ca) {
    if (is_ca) return CertificateRole::ca;
    if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0) return CertificateRole::ra;
    const std::uint32_t bits = X509_get_key_usage(cert);
    const bool signs = (bits & KU_DIGITAL_SIGNATURE) != 0;
    const bool encrypts = (bits & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT)) != 0;
    if (signs && !encrypts) return CertificateRole::ra_signing;
    if (encrypts && !signs) return CertificateRole::ra_encryption;
    return CertificateRole::ra;
}

std::string sha256_fingerprint(const X509* cert) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (X509_digest(cert, EVP_sha256(), digest, &length) != 1) return {};
    return hex_text(std::span<const std::uint8_t>(digest, length), ':');
}

}  // namespace

CertificateSummary summarize_certificate(X509* cert) {
    CertificateSummary summary;
    if (cert == nullptr) return summary;
    summary.subject = one_line_name(X509_get_subject_name(cert));
    summary.issuer = one_line_name(X509_get_issuer_name(cert));
    summary.serial_hex = serial_hex(X509_get0_serialNumber(cert));
    summary.not_before = unix_seconds(X509_get0_notBefore(cert));
    summary.not_after = unix_seconds(X509_get0_notAfter(cert));
    const std::uint32_t flags = X509_get_extension_flags(cert);
    summary.is_ca = (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
    summary.key_usage = key_usage_names(cert);
    summary.role = role_of(cert, summary.is_ca);
    summary.sha256_fingerprint = sha256_fingerprint(cert);
    const unsigned char* issuer_der = nullptr;
    std::size_t issuer_length = 0;
    if (X509_NAME_get0_der(X509_get_issuer_name(cert), &issuer_der, &issuer_length) == 1)
        summary.issuer_der.assign(issuer_der, issuer_der + issuer_length);
    summary.serial_der = integer_der_contents(X509_get0_serialNumber(cert));
    if (const ASN1_OCTET_STRING* key_id = X509_get0_subject_key_id(cert)) {
        const unsigned char* data = ASN1_STRING_get0_data(key_id);
        summary.subject_key_id.assign(data, data + ASN1_STRING_length(key_id));
    }
    return summary;
}

}  // namespace scepproxy::pkcs7
