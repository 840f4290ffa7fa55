// CertificateSummary: what the proxy logs and checks about an X.509 certificate (names, serial, validity, CA, key usage).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <openssl/types.h>

namespace scepproxy::pkcs7 {

// What a certificate in a GetCACert answer is for, by basicConstraints and key usage: the CA, or
// an RA certificate for signing (CertReps), for encryption (devices encrypt requests to it), or
// both (one RA certificate, or no key usage extension).
enum class CertificateRole { ca, ra_signing, ra_encryption, ra };
const char* to_string(CertificateRole role);  // "ca", "ra_signing", "ra_encryption", "ra"

struct CertificateSummary {
    std::string subject;          // one line, RFC 2253 order and escaping ("CN=x,O=y,C=US"); bytes >= 0x80 escaped
    std::string issuer;           // same format
    std::string serial_hex;       // upper-case hex as `openssl x509 -serial` prints it ("01", "BCEB...")
    std::int64_t not_before = 0;  // Unix seconds; 0 when the time cannot be read
    std::int64_t not_after = 0;   // Unix seconds; 0 when the time cannot be read
    bool is_ca = false;           // basicConstraints present with cA TRUE
    std::string key_usage;        // e.g. "digitalSignature,keyEncipherment"; empty when the extension is absent
    CertificateRole role = CertificateRole::ra;
    std::string sha256_fingerprint;  // as `openssl x509 -fingerprint -sha256` prints it ("0C:F4:...")
    // What a CMS recipient or signer identifier names the certificate by, as encoded in it.
    std::vector<std::uint8_t> issuer_der;      // the issuer Name's DER
    std::vector<std::uint8_t> serial_der;      // the serialNumber INTEGER's DER contents
    std::vector<std::uint8_t> subject_key_id;  // the subjectKeyIdentifier extension's octets; empty when absent
};

// Never fails: unreadable parts are left empty (or 0). Non-const because OpenSSL caches
// the decoded extensions inside the X509 object.
CertificateSummary summarize_certificate(X509* cert);

// The formats of `subject` and `serial_hex` above, for names and serials met elsewhere.
std::string one_line_name(const X509_NAME* name);
std::string serial_hex(const ASN1_INTEGER* serial);
// Upper-case hex of the bytes, with `separator` between bytes when not '\0' (fingerprints use ':').
std::string hex_text(std::span<const std::uint8_t> bytes, char separator = '\0');
// An INTEGER's DER contents (two's complement, minimal); empty when it can't be encoded.
std::vector<std::uint8_t> integer_der_contents(const ASN1_INTEGER* integer);

}  // namespace scepproxy::pkcs7
