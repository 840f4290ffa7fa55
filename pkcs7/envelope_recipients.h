// The certificates a pkiMessage's pkcsPKIEnvelope is encrypted to, read in the clear: the envelope is never opened.
//
// A SCEP request's EnvelopedData names, for each recipient, the certificate whose key encrypts
// the content-encryption key: KeyTransRecipientInfo.rid, an issuerAndSerialNumber or a
// subjectKeyIdentifier (RFC 5652 6.2.1). It is the RA (or CA) certificate the device took from
// GetCACert, so it says which upstream can decrypt the request. Bytes in, result out: never
// throws, never crashes, and leaves nothing on OpenSSL's error queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "pkcs7/certificate_summary.h"
#include "pkcs7/parse_result.h"

namespace scepproxy::pkcs7 {

enum class RecipientIdKind { issuer_and_serial, subject_key_id };

struct RecipientId {
    RecipientIdKind kind = RecipientIdKind::issuer_and_serial;
    std::vector<std::uint8_t> issuer;          // DER of the issuer Name, as sent (issuer_and_serial)
    std::vector<std::uint8_t> serial;          // the serialNumber INTEGER's contents, as sent (issuer_and_serial)
    std::vector<std::uint8_t> subject_key_id;  // the key identifier's octets (subject_key_id)

    bool operator==(const RecipientId&) const = default;
};

struct EnvelopeLimits {
    std::size_t max_message_bytes = 256 * 1024;  // the whole pkiMessage, as PkiMessageLimits
    std::size_t max_recipients = 8;              // SCEP clients encrypt to one
    std::size_t max_issuer_bytes = 4096;         // a Name's DER
    std::size_t max_serial_bytes = 32;           // RFC 5280: at most 20 octets; some CAs pad
    std::size_t max_key_id_bytes = 64;           // SHA-1 (20) or SHA-256 (32) key identifiers
};

struct EnvelopeRecipients {
    std::vector<RecipientId> key_transport;  // every KeyTransRecipientInfo, in message order
    // Recipients of other kinds (key agreement, KEK, password, other): named by no certificate
    // the proxy can match, so counted only.
    std::size_t other_recipients = 0;
};

using EnvelopeRecipientsParse = ParseResult<EnvelopeRecipients>;

// Errors: empty, too_large, truncated, trailing_data, not_der, not_signed_data (framing of the
// pkiMessage, as parse_pki_message), no_envelope (no encapsulated content), not_enveloped_data,
// too_many_recipients, bad_recipient. Definite-length DER is walked without OpenSSL; BER (as
// some clients send) is decoded with OpenSSL's CMS parser, with the same answers.
EnvelopeRecipientsParse read_envelope_recipients(std::span<const std::uint8_t> pki_message,
                                                 const EnvelopeLimits& limits = {});

// The recipient names this certificate: the same issuer Name (DER bytes) and serial, or the same
// subjectKeyIdentifier extension. Clients copy both from the certificate, so bytes compare.
bool names_certificate(const RecipientId& recipient, const CertificateSummary& certificate);

// For logs: "issuer=<RFC 2253 name> serial=<hex>" or "subject_key_id=<hex>".
std::string describe(const RecipientId& recipient);

}  // namespace scepproxy::pkcs7
