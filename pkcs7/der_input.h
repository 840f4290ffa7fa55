// First look at untrusted DER before OpenSSL parses it: size bounds and the outer SEQUENCE's length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "pkcs7/parse_result.h"

namespace scepproxy::pkcs7 {

struct DerInputCheck {
    bool ok = false;
    ParseError error = ParseError::not_der;  // when !ok
    const char* detail = "";
};

// Rejects empty or oversized input, anything not starting with a SEQUENCE, and a definite outer
// length that runs past the end (truncated) or stops before it (trailing_data). An indefinite
// (BER) outer length passes; the caller then checks that the parser consumed every byte.
DerInputCheck check_der_input(std::span<const std::uint8_t> der, std::size_t max_bytes);

}  // namespace scepproxy::pkcs7
