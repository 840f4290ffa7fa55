// ParseError / ParseResult: the typed outcome of every pkcs7/ parser (a value, or a reason code and detail).
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace scepproxy::pkcs7 {

// Reason codes; to_string() gives the short snake_case text used in logs and metric labels.
enum class ParseError {
    empty,                   // no input at all
    too_large,               // input (or decoded output) over the configured limit
    truncated,               // the outer DER length runs past the end of the input
    trailing_data,           // bytes left after the outer DER element
    not_der,                 // not a DER/BER structure of the expected kind
    not_signed_data,         // a CMS ContentInfo, but not SignedData
    no_signer,               // SignedData without a signerInfo (e.g. a certs-only PKCS#7)
    multiple_signers,        // more than one signerInfo: a pkiMessage has exactly one
    missing_message_type,    // no SCEP messageType signed attribute
    missing_transaction_id,  // no SCEP transactionID signed attribute
    missing_pki_status,      // a CertRep without pkiStatus
    bad_attribute,           // SCEP attribute duplicated, multi-valued, of the wrong type, out of range or too long
    no_certificates,         // a GetCACert answer without any certificate
    too_many_certificates,   // a GetCACert answer over the certificate limit
    bad_percent_escape,      // '%' not followed by two hex digits
    bad_base64,              // a character outside both base64 alphabets, or misplaced padding
    no_envelope,             // a pkiMessage without encapsulated content (a CertRep FAILURE or PENDING)
    not_enveloped_data,      // the encapsulated content is not a CMS EnvelopedData
    too_many_recipients,     // an EnvelopedData with more recipientInfos than the limit
    bad_recipient,           // a recipientInfo malformed, or a field of it over its limit
};

const char* to_string(ParseError error);

// Either a value, or the error and a short human-readable detail for the log ("transactionID: too long").
template <typename T>
struct ParseResult {
    std::optional<T> value;
    ParseError error = ParseError::not_der;  // meaningful only when !ok()
    std::string detail;

    bool ok() const { return value.has_value(); }

    static ParseResult success(T v) { return ParseResult{std::move(v), ParseError::not_der, {}}; }
    static ParseResult failure(ParseError e, std::string d = {}) { return ParseResult{std::nullopt, e, std::move(d)}; }
};

}  // namespace scepproxy::pkcs7
