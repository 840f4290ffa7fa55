// The GET `message=` parameter of a PKIOperation: decoding what clients send, encoding what we send upstream.
#include "pkcs7/scep_message_encoding.h"

#include <algorithm>

namespace scepproxy::pkcs7 {

namespace {

constexpr char kStandardAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// What one (already percent-decoded) character means in a message parameter.
enum class CharClass { sextet, padding, skipped, invalid };

CharClass classify(unsigned char c, unsigned* sextet) {
    if (c >= 'A' && c <= 'Z') { *sextet = c - 'A'; return CharClass::sextet; }
    if (c >= 'a' && c <= 'z') { *sextet = c - 'a' + 26; return CharClass::sextet; }
    if (c >= '0' && c <= '9') { *sextet = c - '0' + 52; return CharClass::sextet; }
    switch (c) {
        case '+': case '-': case ' ': *sextet = 62; return CharClass::sextet;  // ' ': a form-decoded '+'
        case '/': case '_': *sextet = 63; return CharClass::sextet;
        case '=': return CharClass::padding;
        case '\r': case '\n': case '\t': return CharClass::skipped;
        default: return CharClass::invalid;
    }
}

MessageParameterDecode rejected(ParseError error, const char* detail) {
    return MessageParameterDecode::failure(error, detail);
}

}  // namespace

MessageParameterDecode decode_message_parameter(std::string_view raw_value, std::size_t max_der_bytes) {
    std::vector<std::uint8_t> der;
    der.reserve(std::min(max_der_bytes, raw_value.size() / 4 * 3 + 3));
    std::uint32_t group = 0;      // sextets of the current 4-character group
    std::size_t in_group = 0;     // how many of them
    std::size_t padding = 0;

    for (std::size_t i = 0; i < raw_value.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(raw_value[i]);
        if (c == '%') {
            const int high = i + 2 < raw_value.size() ? hex_value(raw_value[i + 1]) : -1;
            const int low = high >= 0 ? hex_value(raw_value[i + 2]) : -1;
            if (low < 0) return rejected(ParseError::bad_percent_escape, "'%' not followed by two hex digits");
            c = static_cast<unsigned char>(high * 16 + low);
            i += 2;
        }
        unsigned sextet = 0;
        switch (classify(c, &sextet)) {
            case CharClass::skipped: continue;
            case CharClass::invalid: return rejected(ParseError::bad_base64, "character outside the base64 alphabets");
            case CharClass::padding: ++padding; continue;
            case CharClass::sextet: break;
        }
        if (padding > 0) return rejected(ParseError::bad_base64, "data after '=' padding");
        group = (group << 6) | sextet;
        if (++in_group < 4) continue;
        if (der.size() + 3 > max_der_bytes) return rejected(ParseError::too_large, "decoded message over the size limit");
        der.push_back(static_cast<std::uint8_t>(group >> 16));
        der.push_back(static_cast<std::uint8_t>(group >> 8));
        der.push_back(static_cast<std::uint8_t>(group));
        group = 0;
        in_group = 0;
    }

    // A final group of 2 or 3 characters carries 1 or 2 bytes; its padding, if any, must complete it.
    if (in_group == 1) return rejected(ParseError::bad_base64, "length no base64 text can have");
    if (padding > 0 && (in_group == 0 || in_group + padding != 4))
        return rejected(ParseError::bad_base64, "wrong amount of '=' padding");
    const std::size_t tail_bytes = in_group == 0 ? 0 : in_group - 1;
    if (der.size() + tail_bytes > max_der_bytes) return rejected(ParseError::too_large, "decoded message over the size limit");
    if (in_group == 2) {
        der.push_back(static_cast<std::uint8_t>(group >> 4));
    } else if (in_group == 3) {
        der.push_back(static_cast<std::uint8_t>(group >> 10));
        der.push_back(static_cast<std::uint8_t>(group >> 2));
    }
    if (der.empty()) return rejected(ParseError::empty, "no base64 data");
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
