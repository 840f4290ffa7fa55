// Strict, allocation-light parser of HTTP/1.1 requests from devices: head, framing, and the body (Content-Length or chunked).
//
// Use, per connection (one parser, reused for every request on it):
//
//   HttpRequestParser parser(limits);          // reserves the field array once
//   // Head: give the whole buffered head-so-far, starting at the request's
//   // first byte, each time bytes arrive (its address may change between calls).
//   switch (parser.parse_head(buffer)) {
//     case ParseStatus::need_more: wait for bytes;
//     case ParseStatus::error: answer parser.error().status, close;
//     case ParseStatus::done: const HttpRequest& req = parser.request();
//         // views in req point into `buffer`: use them before it changes.
//   }
//   // Body: give the bytes not yet consumed, starting at buffer + req.head_length.
//   RequestBodyProgress p = parser.read_body(bytes, body);  // appends to body
//   // p.consumed bytes were body; the rest belongs to the next request.
//   parser.reset();                             // before the next request
//
// What it rejects (every rejection is an HttpError with a reason code):
//   - limits, enforced as bytes arrive (HeadScanner): request line longer than
//     max_request_line_bytes (414), head longer than max_header_bytes or more
//     than max_headers field lines (431), body larger than max_body_bytes (413,
//     from Content-Length before any body byte is read);
//   - bare LF, bare CR, NUL anywhere in the head (400);
//   - request line: method not a token, target not origin-form (absolute-form,
//     '*', anything but VCHAR without '#'), not exactly one SP between parts;
//     HTTP versions other than 1.0/1.1 (505);
//   - fields: obs-fold, whitespace before ':', non-token names, CTLs in values;
//   - Host: missing in HTTP/1.1, repeated, or with characters no host has;
//   - framing: see resolve_framing() (TE+CL, duplicate or malformed CL,
//     TE other than "chunked" → 501, TE in HTTP/1.0);
//   - Expect other than 100-continue (417; ignored in HTTP/1.0 as RFC 9110 says).
// Tolerated: empty lines before the request line (RFC 9112 §2.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/chunked_body_decoder.h"
#include "proxy/http/http_error.h"
#include "proxy/http/http_field_syntax.h"
#include "proxy/http/http_head_scanner.h"

namespace scepproxy::http {

// Request limits; the proxy fills them from conf::LimitsConfig.
struct HttpLimits {
    uint32_t max_request_line_bytes = 16384;  // without the CRLF
    uint32_t max_header_bytes = 32768;        // whole head: request line through the final CRLF CRLF
    uint32_t max_headers = 64;                // field lines
    uint32_t max_body_bytes = 65536;          // Content-Length, or decoded chunked size
    // Chunked bodies also bound their trailer section by max_header_bytes and their chunk
    // extensions by ChunkedLimits::max_extension_bytes (see chunked_body_decoder.h).
};

enum class HttpMethod : uint8_t { get, head, post, other };

struct HttpRequest {
    HttpMethod method = HttpMethod::other;
    std::string_view method_text;
    std::string_view target;  // as sent, origin-form: "/scep/x?operation=GetCACert"
    std::string_view path;    // target before '?'
    std::string_view query;   // after the first '?', without it; empty when there is none
    HttpVersion version = HttpVersion::http_1_1;
    std::span<const HttpField> fields;  // in order; values trimmed of OWS
    std::string_view host;              // empty when absent (HTTP/1.0 only)
    std::optional<uint64_t> content_length;
    bool chunked = false;
    bool keep_alive = false;       // the connection may carry another request after this one
    bool expect_continue = false;  // "Expect: 100-continue": send 100 Continue before reading the body
    size_t head_length = 0;        // bytes of the head (including skipped empty lines): the body starts here

    const HttpField* find(std::string_view name) const { return find_field(fields, name); }
};

struct RequestBodyProgress {
    ParseStatus status = ParseStatus::need_more;  // done: the whole body is in `body`
    size_t consumed = 0;                          // input bytes that were body (or chunk framing)
};

class HttpRequestParser {
public:
    explicit HttpRequestParser(const HttpLimits& limits);

    // input: the whole head-so-far from the request's first byte (may include body bytes after it).
    ParseStatus parse_head(std::string_view input);
    // Valid after parse_head() returned done; views point into the input of that call.
    const HttpRequest& request() const { return request_; }
    // False when the request has neither Content-Length (> 0) nor chunked framing.
    bool has_body() const;

    // After the head: feed the bytes that follow it, as they arrive; decoded body
    // bytes are appended to `body` (reserve it to max_body_bytes, or to
    // content_length). Returns done once the body is complete; without a body it is
    // done at once with nothing consumed.
    RequestBodyProgress read_body(std::string_view input, std::string& body);

    const HttpError& error() const { return error_; }

    // Forget the current request; keeps the reserved field array.
    void reset();

private:
    ParseStatus fail(HttpErrorCode code);
    HttpErrorCode parse_request_line(std::string_view line);
    HttpErrorCode apply_request_semantics(const FramingFields& framing);

    enum class Phase : uint8_t { head, body, done, failed };

    HttpLimits limits_;
    HeadScanner scanner_;
    ChunkedBodyDecoder chunked_;
    std::vector<HttpField> fields_;
    HttpRequest request_;
    Phase phase_ = Phase::head;
    uint64_t body_remaining_ = 0;  // Content-Length bytes still to come
    HttpError error_;
};

}  // namespace scepproxy::http
