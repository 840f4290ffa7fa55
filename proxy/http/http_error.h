// Why the HTTP codec rejected a message: a stable reason code plus the status the proxy answers with.
//
// Every rejection of the request parser, the response parser and the chunked
// decoder is one HttpErrorCode. reason_code() gives its snake_case name (stable:
// it is used in logs and as a metrics label). The HTTP status depends on the
// side: a bad request from a device maps to 400/413/414/417/431/501/505
// (HttpError::for_request), anything wrong with an upstream response is a
// 502 for the device (HttpError::for_upstream).
#pragma once

#include <cstdint>
#include <string_view>

namespace scepproxy::http {

enum class HttpErrorCode : uint8_t {
    none,
    // Head structure and limits.
    request_line_too_long,  // 414: request line longer than the limit (status_line_too_long for responses)
    status_line_too_long,
    header_too_large,  // 431: whole head longer than max_header_bytes
    too_many_headers,  // 431: more than max_headers field lines
    nul_byte,
    bare_cr,
    bare_lf,  // line ended by LF without CR (bare LF is not tolerated)
    // Start lines.
    bad_request_line,
    bad_request_target,  // not origin-form (absolute-form, asterisk-form, bad characters)
    bad_status_line,
    unsupported_version,  // 505: well-formed HTTP-version other than 1.0/1.1
    // Field lines.
    obs_fold,
    space_before_colon,
    bad_header_name,
    missing_colon,
    bad_header_value,
    // Request semantics.
    missing_host,
    duplicate_host,
    bad_host,
    unsupported_expectation,  // 417: Expect other than 100-continue
    // Message framing (RFC 9112 §6).
    bad_content_length,
    duplicate_content_length,
    te_and_cl,
    te_in_http_1_0,
    duplicate_transfer_encoding,
    unsupported_transfer_coding,  // 501
    body_too_large,               // 413
    // Chunked body.
    bad_chunk_size,
    bad_chunk_extension,
    chunk_extension_too_long,
    missing_chunk_crlf,
    bad_trailer,
    trailer_too_large,
    // Upstream responses only.
    upstream_body_too_large,
    unexpected_1xx,   // 101 Switching Protocols, or too many interim responses
    truncated_head,   // EOF before the end of the head
    truncated_body,   // EOF before the end of a Content-Length or chunked body
    head_not_parsed,  // read_body() called before parse_head() finished (caller bug)
};

// The stable snake_case name of a code ("te_and_cl"); "none" for none.
std::string_view reason_code(HttpErrorCode code);

struct HttpError {
    uint16_t status = 0;  // 0 when there is no error
    HttpErrorCode code = HttpErrorCode::none;

    std::string_view reason() const { return reason_code(code); }
    explicit operator bool() const { return code != HttpErrorCode::none; }

    // The answer to a device whose request was rejected (400, 413, 414, 417, 431, 501, 505).
    static HttpError for_request(HttpErrorCode code);
    // A rejected upstream response: always 502 for the device.
    static HttpError for_upstream(HttpErrorCode code);
};

}  // namespace scepproxy::http
