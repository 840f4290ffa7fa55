// HTTP/1.1 syntax rules shared by the request and response parsers (RFC 9110 §5, RFC 9112 §2-6), written once.
//
// Character classes, the HTTP-version token, field lines, and the strict
// reading of the fields that decide framing (Content-Length,
// Transfer-Encoding) and connection reuse (Connection). All functions are
// pure, never throw, and never allocate (parse_field_section appends into a
// vector whose capacity the caller reserved).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "proxy/http/http_error.h"

namespace scepproxy::http {

enum class HttpVersion : uint8_t { http_1_0, http_1_1 };

// One header (or trailer) field; both views point into the parsed input. The value is trimmed of OWS.
struct HttpField {
    std::string_view name;
    std::string_view value;
};

// A set of bytes as a lookup table (one load per byte instead of a chain of comparisons).
using ByteSet = std::array<bool, 256>;
// True when every byte of `text` is in `set`. Four bytes per step and one branch: request targets
// and GET messages run to thousands of bytes.
bool all_bytes_in(std::string_view text, const ByteSet& set);

// tchar (RFC 9110 §5.6.2): the characters of a token such as a method or a field name.
bool is_token_char(unsigned char c);
// field-vchar / SP / HTAB (RFC 9110 §5.5): VCHAR and obs-text (0x80-0xFF); no CTL, no DEL.
bool is_field_value_char(unsigned char c);
bool is_token(std::string_view text);

// ASCII case-insensitive comparison (field names and most field values are case-insensitive).
bool equals_ignore_case(std::string_view a, std::string_view b);
// Removes leading and trailing SP/HTAB.
std::string_view trim_ows(std::string_view text);
// True when the comma-separated list (RFC 9110 §5.6.1) holds `token` as an element, ignoring case and OWS.
bool list_contains_token(std::string_view list, std::string_view token);
// The first field named `name` (case-insensitive), or nullptr.
const HttpField* find_field(std::span<const HttpField> fields, std::string_view name);

// Content-Length = 1*DIGIT: no sign, no spaces, no hex, no list; nullopt also on uint64 overflow.
std::optional<uint64_t> parse_content_length(std::string_view value);

enum class VersionMatch : uint8_t { http_1_0, http_1_1, unsupported, malformed };
// HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive); a well-formed other version is `unsupported`.
VersionMatch match_http_version(std::string_view text);

// Byte checks over a whole head: a NUL anywhere gives nul_byte, a CR not followed by LF gives bare_cr.
HttpErrorCode check_head_bytes(std::string_view head);
// What a head that failed to parse with `parse_error` is rejected for: a NUL or a bare CR anywhere
// in it comes first (check_head_bytes). A head that parses holds neither (every byte of its start
// line and field lines passed a character check, and lines end in CRLF), so only failed heads are
// scanned for them.
HttpErrorCode head_error(std::string_view head, HttpErrorCode parse_error);

// The fields that decide framing and connection handling, noted while the field section is parsed.
struct FramingFields {
    uint32_t content_length_count = 0;
    std::string_view content_length;  // value of the first Content-Length field
    uint32_t transfer_encoding_count = 0;
    std::string_view transfer_encoding;  // value of the first Transfer-Encoding field
    uint32_t host_count = 0;
    std::string_view host;
    uint32_t expect_count = 0;
    std::string_view expect;
    std::string_view content_type;       // first Content-Type field
    bool connection_close = false;       // some Connection field lists "close"
    bool connection_keep_alive = false;  // some Connection field lists "keep-alive"
};

// Parses the field lines of a head: `section` runs from just after the start
// line's CRLF up to (not including) the empty line; each line ends in CRLF.
// Rejects obs-fold, whitespace before the colon, a name that is not a token,
// and CTLs in values; appends each field to `fields` (never past its capacity:
// too_many_headers) and notes the framing fields in `framing`.
HttpErrorCode parse_field_section(std::string_view section, std::vector<HttpField>& fields, FramingFields& framing);

// How the message body is delimited, decided from the framing fields (RFC 9112 §6.1-6.3), strictly:
// TE with CL, TE in HTTP/1.0, repeated TE or CL fields, and CL lists are all errors; the only
// transfer coding accepted is exactly "chunked" (unsupported_transfer_coding otherwise).
struct MessageFraming {
    HttpErrorCode error = HttpErrorCode::none;
    std::optional<uint64_t> content_length;
    bool chunked = false;
};
MessageFraming resolve_framing(const FramingFields& framing, HttpVersion version);

// Persistence (RFC 9112 §9.3): HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive" and no "close".
bool is_keep_alive(const FramingFields& framing, HttpVersion version);

}  // namespace scepproxy::http
