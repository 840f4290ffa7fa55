// Finds the end of an HTTP/1.1 message head in bytes that arrive piecemeal, enforcing the size limits as they arrive.
//
// The caller re-gives the whole head-so-far on each call (it may have moved in
// memory); the scanner keeps offsets and resumes where it stopped, so feeding
// a head one byte at a time costs O(n) overall. Limits are checked on the
// bytes seen so far, so an oversize head fails as soon as its limit is crossed:
//   - start line: more than max_start_line_bytes bytes (not counting its CRLF)
//     → request_line_too_long;
//   - head: more than max_head_bytes bytes, counted from input[0] through the
//     CRLF of the empty line that ends the head → header_too_large;
//   - more than max_fields field lines → too_many_headers.
// Exactly at a limit passes. Every line must end in CRLF: a bare LF is an error
// (bare_lf), never tolerated. The scanner only finds lines; the parsers check
// their syntax once the head is complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/http/http_error.h"

namespace scepproxy::http {

// The state of a parse step: wait for more bytes, finished, or rejected (see the parser's error()).
enum class ParseStatus : uint8_t { need_more, done, error };

struct HeadLimits {
    size_t max_start_line_bytes = 0;
    size_t max_head_bytes = 0;
    size_t max_fields = 0;
};

class HeadScanner {
public:
    // skip_leading_empty_lines: requests may be preceded by empty lines (RFC 9112 §2.2, left over
    // after a previous body); they count toward max_head_bytes.
    HeadScanner(HeadLimits limits, bool skip_leading_empty_lines);

    ParseStatus scan(std::string_view input);
    void reset();

    // Valid once scan() returned done. Offsets are from input[0].
    size_t head_length() const { return head_length_; }              // through the final CRLF CRLF
    size_t start_line_offset() const { return start_line_offset_; }  // after skipped empty lines
    size_t start_line_length() const { return start_line_length_; }  // without its CRLF
    size_t field_count() const { return field_count_; }
    HttpErrorCode error() const { return error_; }

private:
    ParseStatus fail(HttpErrorCode code);

    HeadLimits limits_;
    bool skip_leading_empty_lines_;
    ParseStatus status_ = ParseStatus::need_more;
    HttpErrorCode error_ = HttpErrorCode::none;
    size_t scanned_ = 0;  // bytes already searched for LF
    size_t line_start_ = 0;
    bool start_line_seen_ = false;
    size_t start_line_offset_ = 0;
    size_t start_line_length_ = 0;
    size_t field_count_ = 0;
    size_t head_length_ = 0;
};

}  // namespace scepproxy::http
