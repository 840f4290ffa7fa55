// The GET `message=` parameter of a PKIOperation: decoding what clients send, encoding what we send upstream.
#include "pkcs7/scep_message_encoding.h"

#include <algorithm>
#include <array>

namespace scepproxy::pkcs7 {

namespace {

constexpr char kStandardAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// What one (already percent-decoded) character means in a message parameter: its sextet
// (0-63), or one of these. A table: a GET message is thousands of characters, each looked up.
constexpr std::uint8_t kPadding = 64;
constexpr std::uint8_t kSkipped = 65;
constexpr std::uint8_t kInvalid = 66;

constexpr std::array<std::uint8_t, 256> make_char_table() {
    std::array<std::uint8_t, 256> table{};
    table.fill(kInvalid);
    for (int c = 'A'; c <= 'Z'; ++c) table[c] = static_cast<std::uint8_t>(c - 'A');
    for (int c = 'a'; c <= 'z'; ++c) table[c] = static_cast<std::uint8_t>(c - 'a' + 26);
    for (int c = '0'; c <= '9'; ++c) table[c] = static_cast<std::uint8_t>(c - '0' + 52);
    table['+'] = table['-'] = table[' '] = 62;  // standard, base64url, and a form-decoded '+'
    table['/'] = table['_'] = 63;
    table['='] = kPadding;
    table['\r'] = table['\n'] = table['\t'] = kSkipped;
    return table;
}
constexpr std::array<std::uint8_t, 256> kCharTable = make_char_table();

MessageParameterDecode rejected(ParseError error, const char* detail) {
    return MessageParameterDecode::failure(error, detail);
}

}  // namespace

MessageParameterDecode decode_message_parameter(std::string_view raw_value, std::size_t max_der_bytes) {
    // Written by index into room for the most the input can hold (every 4 characters give
    // at most 3 bytes), then cut to what was written.
    std::vector<std::uint8_t> der(std::min(max_der_bytes, raw_value.size() / 4 * 3 + 3));
    std::size_t written = 0;
    std::uint32_t group = 0;   // sextets of the current 4-character group
    std::size_t in_group = 0;  // how many of them
    std::size_t padding = 0;

    const auto* input = reinterpret_cast<const unsigned char*>(raw_value.data());
    for (std::size_t i = 0; i < raw_value.size(); ++i) {
        // Fast path: four plain base64 characters at a group boundary make three bytes at once.
        // Anything else (escapes, padding, line breaks, errors) takes the character path below.
        while (in_group == 0 && padding == 0 && i + 4 <= raw_value.size() && written + 3 <= max_der_bytes) {
            const std::uint32_t a = kCharTable[input[i]], b = kCharTable[input[i + 1]], c = kCharTable[input[i + 2]],
                                d = kCharTable[input[i + 3]];
            if ((a | b | c | d) >= kPadding) break;  // 64 and up: not a sextet
            const std::uint32_t quad = (a << 18) | (b << 12) | (c << 6) | d;
            der[written++] = static_cast<std::uint8_t>(quad >> 16);
            der[written++] = static_cast<std::uint8_t>(quad >> 8);
            der[written++] = static_cast<std::uint8_t>(quad);
            i += 4;
        }
        if (i >= raw_value.size()) break;
        unsigned char c = input[i];
        if (c == '%') {
            const int high = i + 2 < raw_value.size() ? hex_value(raw_value[i + 1]) : -1;
            const int low = high >= 0 ? hex_value(raw_value[i + 2]) : -1;
            if (low < 0) return rejected(ParseError::bad_percent_escape, "'%' not followed by two hex digits");
            c = static_cast<unsigned char>(high * 16 + low);
            i += 2;
        }
        const std::uint8_t sextet = kCharTable[c];
        if (sextet >= kPadding) {
            if (sextet == kSkipped) continue;
            if (sextet == kInvalid) return rejected(ParseError::bad_base64, "character outside the base64 alphabets");
            ++padding;
            continue;
        }
        if (padding > 0) return rejected(ParseError::bad_base64, "data after '=' padding");
        group = (group << 6) | sextet;
        if (++in_group < 4) continue;
        if (written + 3 > max_der_bytes) return rejected(ParseError::too_large, "decoded message over the size limit");
        der[written++] = static_cast<std::uint8_t>(group >> 16);
        der[written++] = static_cast<std::uint8_t>(group >> 8);
        der[written++] = static_cast<std::uint8_t>(group);
        group = 0;
        in_group = 0;
    }

    // A final group of 2 or 3 characters carries 1 or 2 bytes; its padding, if any, must complete it.
    if (in_group == 1) return rejected(ParseError::bad_base64, "length no base64 text can have");
    if (padding > 0 && (in_group == 0 || in_group + padding != 4))
        return rejected(ParseError::bad_base64, "wrong amount of '=' padding");
    const std::size_t tail_bytes = in_group == 0 ? 0 : in_group - 1;
    if (written + tail_bytes > max_der_bytes)
        return rejected(ParseError::too_large, "decoded message over the size limit");
    if (in_group == 2) {
        der[written++] = static_cast<std::uint8_t>(group >> 4);
    } else if (in_group == 3) {
        der[written++] = static_cast<std::uint8_t>(group >> 10);
        der[written++] = static_cast<std::uint8_t>(group >> 2);
    }
    if (written == 0) return rejected(ParseError::empty, "no base64 data");
    der.resize(written);
    return MessageParameterDecode::success(std::move(der));
}

std::string encode_message_parameter(std::span<const std::uint8_t> der) {
    std::string encoded;
    encoded.reserve((der.size() + 2) / 3 * 4 * 3);  // worst case: every character escaped
    auto append = [&encoded](unsigned sextet) {
        switch (const char c = kStandardAlphabet[sextet & 0x3f]) {
            case '+': encoded += "%2B"; break;
            case '/': encoded += "%2F"; break;
            default: encoded += c; break;
        }
    };
    std::size_t i = 0;
    for (; i + 3 <= der.size(); i += 3) {
        const std::uint32_t group = (std::uint32_t{der[i]} << 16) | (std::uint32_t{der[i + 1]} << 8) | der[i + 2];
        append(group >> 18);
        append(group >> 12);
        append(group >> 6);
        append(group);
    }
    const std::size_t rest = der.size() - i;
    if (rest == 1) {
        const std::uint32_t group = std::uint32_t{der[i]} << 16;
        append(group >> 18);
        append(group >> 12);
        encoded += "%3D%3D";
    } else if (rest == 2) {
        const std::uint32_t group = (std::uint32_t{der[i]} << 16) | (std::uint32_t{der[i + 1]} << 8);
        append(group >> 18);
        append(group >> 12);
        append(group >> 6);
        encoded += "%3D";
    }
    return encoded;
}

}  // namespace scepproxy::pkcs7
