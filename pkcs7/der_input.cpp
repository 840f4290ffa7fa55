// First look at untrusted DER before OpenSSL parses it: size bounds and the outer SEQUENCE's length.
#include "pkcs7/der_input.h"

#include <climits>

namespace scepproxy::pkcs7 {

namespace {

constexpr std::uint8_t kSequenceTag = 0x30;  // universal, constructed, SEQUENCE
constexpr std::uint8_t kIndefiniteLength = 0x80;
constexpr std::size_t kMaxLengthOctets = 4;  // 4 GiB: far beyond any limit we accept

DerInputCheck rejected(ParseError error, const char* detail) { return DerInputCheck{false, error, detail}; }

}  // namespace

DerInputCheck check_der_input(std::span<const std::uint8_t> der, std::size_t max_bytes) {
    if (der.empty()) return rejected(ParseError::empty, "no bytes");
    // OpenSSL's d2i takes a long: never hand it more than that, whatever the configured limit.
    if (der.size() > max_bytes || der.size() > static_cast<std::size_t>(LONG_MAX))
        return rejected(ParseError::too_large, "over the size limit");
    if (der[0] != kSequenceTag) return rejected(ParseError::not_der, "does not start with a SEQUENCE");
    if (der.size() < 2) return rejected(ParseError::truncated, "no length octet");

    const std::uint8_t first = der[1];
    if (first == kIndefiniteLength) return DerInputCheck{true, ParseError::not_der, ""};

    std::size_t header = 2;
    std::size_t length = first;
    if (first > kIndefiniteLength) {
        const std::size_t octets = first & 0x7f;
        if (octets > kMaxLengthOctets) return rejected(ParseError::not_der, "outer length too wide");
        if (der.size() < 2 + octets) return rejected(ParseError::truncated, "length octets cut off");
        length = 0;
        for (std::size_t i = 0; i < octets; ++i) length = (length << 8) | der[2 + i];
        header += octets;
    }
    const std::size_t available = der.size() - header;
    if (length > available) return rejected(ParseError::truncated, "outer length past the end of the input");
    if (length < available) return rejected(ParseError::trailing_data, "bytes after the outer element");
    return DerInputCheck{true, ParseError::not_der, ""};
}

}  // namespace scepproxy::pkcs7
