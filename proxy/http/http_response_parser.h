// Strict, streaming parser of HTTP/1.1 responses from upstream SCEP servers: head, framing, body pieces, reuse.
//
// Use, per exchange on an upstream connection:
//
//   HttpResponseParser parser(limits);
//   parser.begin(/*response_to_head=*/false);   // before each request sent upstream
//   // Head: give the whole buffered response-so-far from its first byte each time.
//   parser.parse_head(buffer)  → need_more / error (parser.error()) / done
//   const HttpResponse& r = parser.response();  // views into `buffer`
//   // Body: give the bytes after r.head_length, then each later arrival:
//   for (std::string_view in = rest; ; ) {
//       ResponseBodyPiece piece = parser.read_body(in);
//       if (piece.status == BodyStatus::error) { close upstream; break; }
//       forward(piece.data);                     // a view into `in`: no copy
//       in.remove_prefix(piece.consumed);
//       if (piece.status == BodyStatus::done) break;  // piece.bytes_after_end: close upstream
//       if (in.empty()) break;                   // wait for more bytes
//   }
//   // On EOF from upstream: parser.finish_at_eof() (done for read-until-close bodies).
//   parser.connection_reusable()                 // may the connection go back to the pool?
//
// Rules: the status line is HTTP-version SP 3DIGIT [SP reason] (a missing SP
// before an empty reason is tolerated), version 1.0 or 1.1, status 100-599.
// Interim 1xx responses (100, 102, 103...) are parsed with the same
// strictness and skipped (at most 8 per exchange; 101 is an error: we never
// ask to upgrade). Fields follow the same rules as requests
// (http_field_syntax.h). Body framing (RFC 9112 §6.3): none for 1xx/204/304
// and responses to HEAD; else chunked or Content-Length (TE with CL, TE in
// HTTP/1.0, TE other than "chunked", bad or repeated CL are errors); else
// read-until-close. Every error is an HttpError with status 502; after an
// error the connection must be closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "proxy/http/chunked_body_decoder.h"
#include "proxy/http/http_error.h"
#include "proxy/http/http_field_syntax.h"
#include "proxy/http/http_head_scanner.h"

namespace scepproxy::http {

struct HttpResponseLimits {
    uint32_t max_status_line_bytes = 8192;  // without the CRLF
    uint32_t max_header_bytes = 65536;      // one head, status line through the final CRLF CRLF
    uint32_t max_headers = 128;
    std::optional<uint64_t> max_body_bytes;  // none: unlimited; over it → upstream_body_too_large
};

enum class BodyFraming : uint8_t { none, content_length, chunked, until_close };

struct HttpResponse {
    HttpVersion version = HttpVersion::http_1_1;
    uint16_t status = 0;
    std::string_view reason;                 // may be empty
    std::span<const HttpField> fields;       // of the final (non-1xx) head
    std::string_view content_type;           // empty when absent
    std::optional<uint64_t> content_length;  // as sent (also for HEAD/304, where there is no body)
    BodyFraming framing = BodyFraming::none;
    bool keep_alive = false;  // what the headers say; see connection_reusable()
    size_t head_length = 0;   // bytes of all heads, interim 1xx included: the body starts here

    const HttpField* find(std::string_view name) const { return find_field(fields, name); }
};

enum class BodyStatus : uint8_t { more, done, error };

struct ResponseBodyPiece {
    BodyStatus status = BodyStatus::more;
    std::string_view data;  // body bytes to forward: a view into the input (empty is fine)
    size_t consumed = 0;    // input bytes used, chunk framing included
    // The response ended before the end of the input: an upstream protocol error. The response
    // itself is complete and may be delivered, but the connection must be closed.
    bool bytes_after_end = false;
};

class HttpResponseParser {
public:
    explicit HttpResponseParser(const HttpResponseLimits& limits);

    // Start a new exchange; response_to_head: the request was HEAD, so the response has no body.
    void begin(bool response_to_head = false);

    ParseStatus parse_head(std::string_view input);
    // Valid after parse_head() returned done; views point into the input of that call.
    const HttpResponse& response() const { return response_; }

    // One step of body reading (see the loop above). status more: call again with
    // the rest of the input, or with the next bytes once input is used up.
    ResponseBodyPiece read_body(std::string_view input);
    // The upstream closed the connection: done for read-until-close bodies and
    // finished messages, error (truncated_head / truncated_body) otherwise.
    BodyStatus finish_at_eof();

    // Whether the upstream connection can carry another request: the message is
    // complete, persistent (keep-alive, not read-until-close), and nothing followed it.
    bool connection_reusable() const;

    const HttpError& error() const { return error_; }

private:
    enum class Phase : uint8_t { head, body, done, failed };

    ParseStatus fail(HttpErrorCode code);
    ResponseBodyPiece fail_body(HttpErrorCode code, size_t consumed);
    ResponseBodyPiece finish_body(std::string_view data, size_t consumed, std::string_view input);
    HttpErrorCode parse_status_line(std::string_view line);
    HttpErrorCode apply_framing(const FramingFields& framing);

    HttpResponseLimits limits_;
    HeadScanner scanner_;
    ChunkedBodyDecoder chunked_;
    std::vector<HttpField> fields_;
    HttpResponse response_;
    Phase phase_ = Phase::head;
    bool response_to_head_ = false;
    size_t head_start_ = 0;  // where the current head begins: after skipped 1xx heads
    unsigned interim_count_ = 0;
    uint64_t body_remaining_ = 0;  // Content-Length bytes still to come
    uint64_t body_bytes_ = 0;      // body bytes delivered so far
    bool bytes_after_end_ = false;
    bool eof_seen_ = false;
    HttpError error_;
};

}  // namespace scepproxy::http
