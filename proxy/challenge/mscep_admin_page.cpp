// mscep_admin page reading: encoding detection, UTF-16LE to UTF-8, white-space folding and marker search.
#include "proxy/challenge/mscep_admin_page.h"

#include <algorithm>

namespace scepproxy::challenge {
namespace {

constexpr std::string_view kUtf16leBom = "\xFF\xFE";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr size_t kDetectionWindow = 512;    // bytes looked at to guess the encoding
constexpr size_t kMaxPasswordLength = 255;  // the bound of challenge.expected_length

// Markers, lowercase, single-spaced (the folded page text is compared case-insensitively).
constexpr std::string_view kPasswordMarker = "the enrollment challenge password is:";
constexpr std::string_view kCacheFullMarker = "the password cache is full";
constexpr std::string_view kNoPermissionMarker = "you do not have sufficient permission";

void append_utf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        out += static_cast<char>(0xE0 | (code_point >> 12));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (code_point >> 18));
        out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

constexpr uint32_t kReplacementCharacter = 0xFFFD;

std::string utf16le_to_utf8(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() / 2 + 4);
    const auto unit_at = [&](size_t i) {
        return static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) |
               static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    };
    size_t i = 0;
    while (i + 1 < bytes.size()) {
        const uint32_t unit = unit_at(i);
        i += 2;
        if (unit >= 0xD800 && unit <= 0xDBFF && i + 1 < bytes.size()) {
            const uint32_t low = unit_at(i);
            if (low >= 0xDC00 && low <= 0xDFFF) {
                i += 2;
                append_utf8(out, 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
                continue;
            }
        }
        append_utf8(out, unit >= 0xD800 && unit <= 0xDFFF ? kReplacementCharacter : unit);
    }
    if (i < bytes.size()) append_utf8(out, kReplacementCharacter);  // an odd last byte: the page was cut
    return out;
}

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Runs of white space (and no-break spaces, U+00A0) become one ' ', so markers match however
// the page wraps its lines. Everything else is kept byte for byte.
std::string fold_white_space(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    bool in_space = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        const bool nbsp = c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xA0;
        if (is_space(c) || nbsp) {
            if (nbsp) ++i;
            if (!in_space) out += ' ';
            in_space = true;
            continue;
        }
        in_space = false;
        out += static_cast<char>(c);
    }
    return out;
}

// Position of `marker` (lowercase) in `text`, ignoring ASCII case; npos when absent.
size_t find_marker(std::string_view text, std::string_view marker) {
    const auto it = std::search(text.begin(), text.end(), marker.begin(), marker.end(),
                                [](char a, char b) { return ascii_lower(a) == b; });
    return it == text.end() ? std::string_view::npos : static_cast<size_t>(it - text.begin());
}

// Characters a password may have: printable ASCII without space and HTML's special characters.
bool is_password_character(unsigned char c) {
    return c > 0x20 && c < 0x7F && c != '<' && c != '>' && c != '&' && c != '"' && c != '\'';
}

PageReading unparsable(std::string detail) {
    PageReading reading;
    reading.outcome = ChallengeOutcome::unparsable_page;
    reading.detail = std::move(detail);
    return reading;
}

// What follows the password marker: optional white space and tags, the password, then a
// white-space or tag terminator and, when tags were opened before it, a closing tag.
PageReading read_password_after_marker(std::string_view text, uint32_t expected_length) {
    size_t pos = 0;
    bool opened_tag = false;
    for (;;) {
        while (pos < text.size() && text[pos] == ' ') ++pos;
        if (pos >= text.size()) return unparsable("the page ends after the password marker");
        if (text[pos] != '<') break;
        const size_t tag_end = text.find('>', pos);
        if (tag_end == std::string_view::npos)
            return unparsable("the page ends inside a tag after the password marker");
        if (pos + 1 < text.size() && text[pos + 1] == '/') return unparsable("no password after the password marker");
        opened_tag = true;
        pos = tag_end + 1;
    }
    const size_t start = pos;
    while (pos < text.size() && text[pos] != ' ' && text[pos] != '<') ++pos;
    if (pos >= text.size()) return unparsable("the page ends inside the password");
    const std::string_view password = text.substr(start, pos - start);
    if (opened_tag) {
        while (pos < text.size() && text[pos] == ' ') ++pos;
        if (text.substr(pos, 2) != "</" || text.find('>', pos) == std::string_view::npos)
            return unparsable("the password's closing tag is missing");
    }
    if (!std::all_of(password.begin(), password.end(), [](char c) { return is_password_character(c); }))
        return unparsable("the password has characters NDES does not issue");
    if (password.size() > kMaxPasswordLength) return unparsable("the password is longer than 255 characters");
    if (expected_length != 0 && password.size() != expected_length)
        return unparsable("the password has " + std::to_string(password.size()) + " characters, expected " +
                          std::to_string(expected_length) + " (challenge.expected_length)");
    PageReading reading;
    reading.outcome = ChallengeOutcome::ok;
    reading.password = std::string(password);
    return reading;
}

}  // namespace

PageEncoding detect_page_encoding(std::string_view bytes) {
    if (bytes.starts_with(kUtf16leBom)) return PageEncoding::utf16le;
    if (bytes.starts_with(kUtf8Bom)) return PageEncoding::utf8;
    if (bytes.size() >= 2 && bytes[0] == '<' && bytes[1] == '\0') return PageEncoding::utf16le;
    // Mostly NUL odd bytes: ASCII text in UTF-16LE (leading white space or a lost BOM).
    const size_t window = std::min(bytes.size(), kDetectionWindow) & ~size_t{1};
    size_t zero_odd_bytes = 0;
    for (size_t i = 1; i < window; i += 2)
        if (bytes[i] == '\0') ++zero_odd_bytes;
    const size_t pairs = window / 2;
    return pairs >= 2 && zero_odd_bytes * 4 >= pairs * 3 ? PageEncoding::utf16le : PageEncoding::utf8;
}

std::string decode_page_text(std::string_view bytes) {
    if (detect_page_encoding(bytes) == PageEncoding::utf16le) {
        if (bytes.starts_with(kUtf16leBom)) bytes.remove_prefix(kUtf16leBom.size());
        return utf16le_to_utf8(bytes);
    }
    if (bytes.starts_with(kUtf8Bom)) bytes.remove_prefix(kUtf8Bom.size());
    return std::string(bytes);
}

PageReading read_mscep_admin_page(std::string_view bytes, uint32_t expected_length) {
    const std::string text = fold_white_space(decode_page_text(bytes));
    const size_t marker = find_marker(text, kPasswordMarker);
    if (marker != std::string::npos)
        return read_password_after_marker(std::string_view(text).substr(marker + kPasswordMarker.size()),
                                          expected_length);
    PageReading reading;
    if (find_marker(text, kCacheFullMarker) != std::string::npos) {
        reading.outcome = ChallengeOutcome::password_cache_full;
        reading.detail = "NDES's password cache is full";
    } else if (find_marker(text, kNoPermissionMarker) != std::string::npos) {
        reading.outcome = ChallengeOutcome::insufficient_permission;
        reading.detail = "the service account may not enroll with SCEP";
    } else {
        reading.detail = bytes.empty() ? "the page is empty" : "no challenge password on the page";
    }
    return reading;
}

}  // namespace scepproxy::challenge
