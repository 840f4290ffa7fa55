// Fuzz target: the GET message= parameter — decode never crashes and keeps its limit; encode then decode gives the bytes back, both ways round.
#include <span>
#include <string_view>
#include <vector>

#include "pkcs7/scep_message_encoding.h"
#include "test/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy::pkcs7;
    constexpr size_t kMaxDerBytes = 16 * 1024;
    const std::string_view raw(reinterpret_cast<const char*>(data), size);

    // Input as a query value: whatever decodes must re-encode to a value that decodes to the same bytes.
    const MessageParameterDecode decoded = decode_message_parameter(raw, kMaxDerBytes);
    if (decoded.ok()) {
        FUZZ_CHECK(!decoded.value->empty() && decoded.value->size() <= kMaxDerBytes, "decoded size outside bounds");
        const std::string encoded = encode_message_parameter(*decoded.value);
        const MessageParameterDecode again = decode_message_parameter(encoded, kMaxDerBytes);
        FUZZ_CHECK(again.ok() && *again.value == *decoded.value, "decode(encode(decode(x))) != decode(x)");
    } else {
        FUZZ_CHECK(to_string(decoded.error) != nullptr && *to_string(decoded.error) != '\0', "no reason code");
    }

    // Input as DER bytes: encoding must be canonical base64 with only %2B %2F %3D escapes, and decode back exactly.
    if (size == 0) return 0;
    const std::string encoded = encode_message_parameter(std::span<const uint8_t>(data, size));
    for (char c : encoded) {
        const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '%';
        FUZZ_CHECK(plain, "an encoded character that is not query-safe");
    }
    const MessageParameterDecode round_trip = decode_message_parameter(encoded, size);
    FUZZ_CHECK(round_trip.ok(), "our own encoding does not decode");
    FUZZ_CHECK(std::vector<uint8_t>(data, data + size) == *round_trip.value, "decode(encode(x)) != x");
    return 0;
}
