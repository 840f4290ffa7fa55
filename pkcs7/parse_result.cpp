// Reason-code text for pkcs7::ParseError.
#include "pkcs7/parse_result.h"

namespace scepproxy::pkcs7 {

const char* to_string(ParseError error) {
    switch (error) {
        case ParseError::empty: return "empty";
        case ParseError::too_large: return "too_large";
        case ParseError::truncated: return "truncated";
        case ParseError::trailing_data: return "trailing_data";
        case ParseError::not_der: return "not_der";
        case ParseError::not_signed_data: return "not_signed_data";
        case ParseError::no_signer: return "no_signer";
        case ParseError::multiple_signers: return "multiple_signers";
        case ParseError::missing_message_type: return "missing_message_type";
        case ParseError::missing_transaction_id: return "missing_transaction_id";
        case ParseError::missing_pki_status: return "missing_pki_status";
        case ParseError::bad_attribute: return "bad_attribute";
        case ParseError::no_certificates: return "no_certificates";
        case ParseError::too_many_certificates: return "too_many_certificates";
        case ParseError::bad_percent_escape: return "bad_percent_escape";
        case ParseError::bad_base64: return "bad_base64";
        case ParseError::no_envelope: return "no_envelope";
        case ParseError::not_enveloped_data: return "not_enveloped_data";
        case ParseError::too_many_recipients: return "too_many_recipients";
        case ParseError::bad_recipient: return "bad_recipient";
    }
    return "unknown";
}

}  // namespace scepproxy::pkcs7
