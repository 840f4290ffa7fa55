// The GET `message=` parameter of a PKIOperation: decoding what clients send, encoding what we send upstream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pkcs7/parse_result.h"

namespace scepproxy::pkcs7 {

using MessageParameterDecode = ParseResult<std::vector<std::uint8_t>>;

// raw_value is the query value exactly as it came off the wire (still percent-encoded, or not).
// Accepted, in any mix, because real clients send all of them:
//   - standard base64 (RFC 4648 section 4) and base64url ('-' '_', micromdm scepclient);
//   - percent escapes in either case (%2B %2f %3D ...), or none at all (macOS sends '+' and '/' raw);
//   - a literal '+' is a '+', never a space (this is not form decoding);
//   - a space (literal or %20) is read as '+': base64 has no spaces, and the usual way one
//     appears is a '+' that some component form-decoded on the way;
//   - CR, LF and TAB (literal or escaped) are skipped: line-wrapped base64;
//   - missing '=' padding; non-zero bits in the last character are ignored.
// Errors: empty (nothing after skipping line breaks), too_large (decoded bytes over
// max_der_bytes), bad_percent_escape, bad_base64 (other characters, data after padding,
// too much padding, or a length no base64 text can have).
MessageParameterDecode decode_message_parameter(std::string_view raw_value, std::size_t max_der_bytes);

// Canonical standard base64 with padding, then '+' '/' '=' percent-encoded (%2B %2F %3D):
// safe as a query value for any upstream, NDES included.
std::string encode_message_parameter(std::span<const std::uint8_t> der);

}  // namespace scepproxy::pkcs7
