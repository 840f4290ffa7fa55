// Incremental, strict decoder of the chunked transfer coding (RFC 9112 §7.1), for request and response bodies.
//
// Bytes may arrive split anywhere, even one at a time; the decoder keeps its
// own small state and never buffers input. Strictness:
//   - chunk-size is 1 to 16 HEXDIG: no "0x", no sign, no leading whitespace;
//     after it only CRLF, or optional SP/HTAB then ';' and a chunk extension
//     (anything else → bad_chunk_size);
//   - chunk extensions are skipped; they may hold only field-value characters
//     (bad_chunk_extension) and their bytes over the whole body are bounded
//     (chunk_extension_too_long);
//   - chunk data must be followed by exactly CRLF (missing_chunk_crlf);
//   - trailer fields are checked for syntax (token name, ':', field-value
//     characters, CRLF; bad_trailer) and discarded; the trailer section,
//     including its final CRLF, is bounded (trailer_too_large);
//   - the decoded size is bounded (body_too_large), checked when a chunk's size
//     line is complete, before its data is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "proxy/http/http_error.h"

namespace scepproxy::http {

struct ChunkedLimits {
    uint64_t max_body_bytes = std::numeric_limits<uint64_t>::max();  // decoded bytes
    size_t max_trailer_bytes = 4096;
    size_t max_extension_bytes = 4096;  // bytes between chunk-size and CRLF, all chunks together
};

class ChunkedBodyDecoder {
public:
    explicit ChunkedBodyDecoder(ChunkedLimits limits);

    // One decoding step: consumes chunk framing until it reaches chunk data, the
    // end of the body, an error, or the end of input. Returns the data it reached
    // (a view into input, possibly only part of a chunk) and how many input bytes
    // it used in all. When `data` is empty, all of input was used unless the body
    // ended or an error occurred; so looping while consumed < input.size() and
    // !done() && !failed() always progresses.
    struct Step {
        std::string_view data;
        size_t consumed = 0;
    };
    Step decode_some(std::string_view input);

    // Decodes as much of input as belongs to the body, appending the data to `out`
    // (whose capacity the caller reserved). Returns the number of input bytes used:
    // less than input.size() only when the body ended (the rest is the next message)
    // or an error occurred.
    size_t decode_into(std::string_view input, std::string& out);

    bool done() const { return state_ == State::done; }
    bool failed() const { return state_ == State::failed; }
    HttpErrorCode error() const { return error_; }
    uint64_t decoded_bytes() const { return decoded_bytes_; }

    void reset();

private:
    enum class State : uint8_t {
        size,             // reading chunk-size digits
        size_whitespace,  // BWS between chunk-size and ';'
        extension,        // after ';' up to CR
        size_lf,          // CR seen after the size line
        data,
        data_cr,
        data_lf,
        // The trailer states stay contiguous: in_trailer_section() compares against the first and last.
        trailer_line,  // start of a trailer field line, or of the final CRLF
        trailer_name,
        trailer_value,
        trailer_lf,
        final_lf,  // CR of the final CRLF seen
        done,
        failed,
    };

    Step fail(HttpErrorCode code, size_t consumed);
    bool start_chunk();  // after a size line: false when the size breaks the limit
    bool in_trailer_section() const;
    bool count_extension_byte();  // false once the body's extensions exceed their bound

    ChunkedLimits limits_;
    State state_ = State::size;
    HttpErrorCode error_ = HttpErrorCode::none;
    unsigned size_digits_ = 0;
    uint64_t chunk_size_ = 0;
    uint64_t chunk_remaining_ = 0;
    uint64_t decoded_bytes_ = 0;
    size_t extension_bytes_ = 0;
    size_t trailer_bytes_ = 0;
};

}  // namespace scepproxy::http
