// Incremental end-of-head detection with start-line, head-size and field-count limits.
#include "proxy/http/http_head_scanner.h"

#include <algorithm>
#include <cstring>

namespace scepproxy::http {

HeadScanner::HeadScanner(HeadLimits limits, bool skip_leading_empty_lines)
    : limits_(limits), skip_leading_empty_lines_(skip_leading_empty_lines) {}

void HeadScanner::reset() { *this = HeadScanner(limits_, skip_leading_empty_lines_); }

ParseStatus HeadScanner::fail(HttpErrorCode code) {
    error_ = code;
    status_ = ParseStatus::error;
    return status_;
}

ParseStatus HeadScanner::scan(std::string_view input) {
    if (status_ != ParseStatus::need_more) return status_;
    if (input.size() < scanned_) reset();  // the caller gave less than before: start over rather than misread

    const char* data = input.data();
    // Never look past the head limit: a terminator beyond it could not be accepted anyway.
    const size_t search_end = std::min(input.size(), limits_.max_head_bytes);
    while (scanned_ < search_end) {
        const void* found = std::memchr(data + scanned_, '\n', search_end - scanned_);
        if (found == nullptr) {
            scanned_ = search_end;
            break;
        }
        const size_t lf = static_cast<size_t>(static_cast<const char*>(found) - data);
        scanned_ = lf + 1;
        const bool has_cr = lf > line_start_ && data[lf - 1] == '\r';
        const size_t line_length = lf - line_start_ - (has_cr ? 1 : 0);
        // The start-line limit goes first: fed piecemeal, an overlong line fails before its LF arrives,
        // so the same bytes must give the same answer when they arrive at once.
        if (!start_line_seen_ && line_length > limits_.max_start_line_bytes)
            return fail(HttpErrorCode::request_line_too_long);
        if (!has_cr) return fail(HttpErrorCode::bare_lf);
        if (!start_line_seen_) {
            if (line_length == 0 && skip_leading_empty_lines_) {
                line_start_ = lf + 1;
                start_line_offset_ = lf + 1;
                continue;
            }
            start_line_seen_ = true;
            start_line_length_ = line_length;
        } else if (line_length == 0) {
            head_length_ = lf + 1;
            status_ = ParseStatus::done;
            return status_;
        } else if (++field_count_ > limits_.max_fields) {
            return fail(HttpErrorCode::too_many_headers);
        }
        line_start_ = lf + 1;
    }

    if (!start_line_seen_) {
        // The start line is still open: fail as soon as its content alone exceeds the limit.
        size_t open_length = scanned_ - line_start_;
        if (open_length > 0 && data[scanned_ - 1] == '\r') --open_length;  // may be the CR of its CRLF
        if (open_length > limits_.max_start_line_bytes) return fail(HttpErrorCode::request_line_too_long);
    }
    if (input.size() > limits_.max_head_bytes) return fail(HttpErrorCode::header_too_large);
    return ParseStatus::need_more;
}

}  // namespace scepproxy::http
