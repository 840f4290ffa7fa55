// HTTP/1.1 syntax rules shared by the request and response parsers: character tables, field lines, framing fields.
#include "proxy/http/http_field_syntax.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace scepproxy::http {
namespace {

// Lookup tables: one load per byte on the data path instead of a chain of comparisons.
constexpr ByteSet make_token_table() {
    ByteSet table{};
    for (int c = '0'; c <= '9'; ++c) table[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
    return table;
}

constexpr ByteSet make_field_value_table() {
    ByteSet table{};
    table['\t'] = true;
    for (int c = 0x20; c <= 0x7e; ++c) table[c] = true;  // SP and VCHAR
    for (int c = 0x80; c <= 0xff; ++c) table[c] = true;  // obs-text
    return table;
}

constexpr auto kTokenChars = make_token_table();
constexpr auto kFieldValueChars = make_field_value_table();

constexpr unsigned char to_lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + ('a' - 'A')) : c;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// A byte that broke a syntax rule: NUL and CR have their own reasons, whatever rule they broke.
HttpErrorCode invalid_byte(unsigned char c, HttpErrorCode otherwise) {
    if (c == '\0') return HttpErrorCode::nul_byte;
    if (c == '\r') return HttpErrorCode::bare_cr;
    return otherwise;
}

// The fields parse_field_section notes for framing, recognised by name.
enum class KnownField : uint8_t { other, host, expect, connection, content_type, content_length, transfer_encoding };

// `name` is `lowercase` in any case; the sizes are equal. Inlined where equals_ignore_case is a call.
bool name_is(std::string_view name, std::string_view lowercase) {
    for (size_t i = 0; i < lowercase.size(); ++i)
        if (to_lower(static_cast<unsigned char>(name[i])) != static_cast<unsigned char>(lowercase[i])) return false;
    return true;
}

KnownField classify_field_name(std::string_view name) {
    // Dispatch on length first: most fields are compared against at most one candidate.
    switch (name.size()) {
        case 4: return name_is(name, "host") ? KnownField::host : KnownField::other;
        case 6: return name_is(name, "expect") ? KnownField::expect : KnownField::other;
        case 10: return name_is(name, "connection") ? KnownField::connection : KnownField::other;
        case 12: return name_is(name, "content-type") ? KnownField::content_type : KnownField::other;
        case 14: return name_is(name, "content-length") ? KnownField::content_length : KnownField::other;
        case 17: return name_is(name, "transfer-encoding") ? KnownField::transfer_encoding : KnownField::other;
        default: return KnownField::other;
    }
}

void note_framing_field(const HttpField& field, FramingFields& framing) {
    switch (classify_field_name(field.name)) {
        case KnownField::other: break;
        case KnownField::host:
            if (framing.host_count++ == 0) framing.host = field.value;
            break;
        case KnownField::expect:
            if (framing.expect_count++ == 0) framing.expect = field.value;
            break;
        case KnownField::connection:
            framing.connection_close |= list_contains_token(field.value, "close");
            framing.connection_keep_alive |= list_contains_token(field.value, "keep-alive");
            break;
        case KnownField::content_type:
            if (framing.content_type.empty()) framing.content_type = field.value;
            break;
        case KnownField::content_length:
            if (framing.content_length_count++ == 0) framing.content_length = field.value;
            break;
        case KnownField::transfer_encoding:
            if (framing.transfer_encoding_count++ == 0) framing.transfer_encoding = field.value;
            break;
    }
}

// A well-formed field line and its CRLF, read in one pass (the common case): returns where the
// next line starts, or nullptr for anything else, which parse_field_line then reads or rejects
// with its reason. What this accepts, parse_field_line reads the same way.
const char* read_plain_field_line(const char* line, const char* end, HttpField& field) {
    const char* name_end = line;
    while (name_end != end && kTokenChars[static_cast<unsigned char>(*name_end)]) ++name_end;
    if (name_end == line || name_end == end || *name_end != ':') return nullptr;
    const char* value_end = name_end + 1;
    while (value_end != end && kFieldValueChars[static_cast<unsigned char>(*value_end)]) ++value_end;
    if (end - value_end < 2 || value_end[0] != '\r' || value_end[1] != '\n') return nullptr;
    field.name = std::string_view(line, static_cast<size_t>(name_end - line));
    field.value = trim_ows(std::string_view(name_end + 1, static_cast<size_t>(value_end - name_end - 1)));
    return value_end + 2;
}

// One field line without its CRLF.
HttpErrorCode parse_field_line(std::string_view line, HttpField& field) {
    if (line.empty()) return HttpErrorCode::missing_colon;  // cannot happen: the empty line ends the head
    if (is_ows(line[0])) return HttpErrorCode::obs_fold;

    size_t i = 0;
    while (i < line.size() && kTokenChars[static_cast<unsigned char>(line[i])]) ++i;
    if (i == line.size()) return HttpErrorCode::missing_colon;
    if (line[i] != ':') {
        if (is_ows(line[i])) {
            size_t after_ws = i;
            while (after_ws < line.size() && is_ows(line[after_ws])) ++after_ws;
            if (after_ws < line.size() && line[after_ws] == ':') return HttpErrorCode::space_before_colon;
        }
        return invalid_byte(static_cast<unsigned char>(line[i]), HttpErrorCode::bad_header_name);
    }
    if (i == 0) return HttpErrorCode::bad_header_name;  // empty name

    std::string_view value = line.substr(i + 1);
    for (char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (!kFieldValueChars[byte]) return invalid_byte(byte, HttpErrorCode::bad_header_value);
    }
    field.name = line.substr(0, i);
    field.value = trim_ows(value);
    return HttpErrorCode::none;
}

}  // namespace

bool is_token_char(unsigned char c) { return kTokenChars[c]; }

bool is_field_value_char(unsigned char c) { return kFieldValueChars[c]; }

bool all_bytes_in(std::string_view text, const ByteSet& set) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const size_t size = text.size();
    size_t i = 0;
    for (; i + 4 <= size; i += 4) {
        if (!(set[bytes[i]] & set[bytes[i + 1]] & set[bytes[i + 2]] & set[bytes[i + 3]])) return false;
    }
    for (; i < size; ++i) {
        if (!set[bytes[i]]) return false;
    }
    return true;
}

bool is_token(std::string_view text) { return !text.empty() && all_bytes_in(text, kTokenChars); }

bool equals_ignore_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (to_lower(static_cast<unsigned char>(a[i])) != to_lower(static_cast<unsigned char>(b[i]))) return false;
    }
    return true;
}

std::string_view trim_ows(std::string_view text) {
    while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
    return text;
}

bool list_contains_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (equals_ignore_case(element, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

const HttpField* find_field(std::span<const HttpField> fields, std::string_view name) {
    for (const HttpField& field : fields) {
        if (equals_ignore_case(field.name, name)) return &field;
    }
    return nullptr;
}

std::optional<uint64_t> parse_content_length(std::string_view value) {
    if (value.empty()) return std::nullopt;
    uint64_t result = 0;
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    for (char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<uint64_t>(c - '0');
        if (result > (kMax - digit) / 10) return std::nullopt;
        result = result * 10 + digit;
    }
    return result;
}

VersionMatch match_http_version(std::string_view text) {
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || !is_digit(text[5]) || text[6] != '.' ||
        !is_digit(text[7])) {
        return VersionMatch::malformed;
    }
    if (text[5] == '1' && text[7] == '1') return VersionMatch::http_1_1;
    if (text[5] == '1' && text[7] == '0') return VersionMatch::http_1_0;
    return VersionMatch::unsupported;
}

HttpErrorCode check_head_bytes(std::string_view head) {
    if (std::memchr(head.data(), '\0', head.size()) != nullptr) return HttpErrorCode::nul_byte;
    // memchr hops from CR to CR (about one per line) instead of looking at every byte.
    const char* end = head.data() + head.size();
    for (const char* cr = head.data(); (cr = static_cast<const char*>(std::memchr(cr, '\r', end - cr))) != nullptr;
         ++cr) {
        if (cr + 1 == end || cr[1] != '\n') return HttpErrorCode::bare_cr;
    }
    return HttpErrorCode::none;
}

HttpErrorCode head_error(std::string_view head, HttpErrorCode parse_error) {
    const HttpErrorCode byte_error = check_head_bytes(head);
    return byte_error != HttpErrorCode::none ? byte_error : parse_error;
}

HttpErrorCode parse_field_section(std::string_view section, std::vector<HttpField>& fields, FramingFields& framing) {
    while (!section.empty()) {
        HttpField field;
        const char* const end = section.data() + section.size();
        if (const char* next = read_plain_field_line(section.data(), end, field)) {
            section.remove_prefix(static_cast<size_t>(next - section.data()));
        } else {
            const size_t lf = section.find('\n');
            if (lf == std::string_view::npos || lf == 0 || section[lf - 1] != '\r') return HttpErrorCode::bare_lf;
            const HttpErrorCode error = parse_field_line(section.substr(0, lf - 1), field);
            if (error != HttpErrorCode::none) return error;
            section.remove_prefix(lf + 1);
        }
        if (fields.size() == fields.capacity()) return HttpErrorCode::too_many_headers;  // never reallocate
        fields.push_back(field);
        note_framing_field(field, framing);
    }
    return HttpErrorCode::none;
}

MessageFraming resolve_framing(const FramingFields& framing, HttpVersion version) {
    MessageFraming result;
    if (framing.transfer_encoding_count > 0) {
        // Either header alone is unambiguous; both together is the classic smuggling vector.
        if (framing.content_length_count > 0) {
            result.error = HttpErrorCode::te_and_cl;
        } else if (version == HttpVersion::http_1_0) {
            result.error = HttpErrorCode::te_in_http_1_0;
        } else if (framing.transfer_encoding_count > 1) {
            result.error = HttpErrorCode::duplicate_transfer_encoding;
        } else if (!equals_ignore_case(framing.transfer_encoding, "chunked")) {
            result.error = HttpErrorCode::unsupported_transfer_coding;
        } else {
            result.chunked = true;
        }
        return result;
    }
    if (framing.content_length_count > 0) {
        // Any repetition is rejected, even of identical values ("5, 5" or two fields): simplest and safe.
        if (framing.content_length_count > 1 || framing.content_length.find(',') != std::string_view::npos) {
            result.error = HttpErrorCode::duplicate_content_length;
            return result;
        }
        result.content_length = parse_content_length(framing.content_length);
        if (!result.content_length) result.error = HttpErrorCode::bad_content_length;
    }
    return result;
}

bool is_keep_alive(const FramingFields& framing, HttpVersion version) {
    if (framing.connection_close) return false;
    return version == HttpVersion::http_1_1 || framing.connection_keep_alive;
}

}  // namespace scepproxy::http
