// Feeds bytes to HttpResponseParser the way UpstreamConnection does (head, streamed body pieces, EOF) and records what came out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/http/http_response_parser.h"

namespace scepproxy::fuzz {

// Small limits, so that inputs of a few KB reach every limit check.
http::HttpResponseLimits fuzz_response_limits();

// The final head as the parser saw it, copied out of its views.
struct ParsedResponse {
    http::HttpVersion version = http::HttpVersion::http_1_1;
    uint16_t status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string content_type;
    std::optional<uint64_t> content_length;
    http::BodyFraming framing = http::BodyFraming::none;
    bool keep_alive = false;
    size_t head_length = 0;

    bool operator==(const ParsedResponse&) const = default;
};

struct ResponseFeedOutcome {
    std::optional<ParsedResponse> head;
    std::string body;         // every data piece, concatenated
    bool complete = false;    // the exchange ended with a whole response
    http::HttpError error;    // set when it ended in a rejection (truncation at EOF included)
    size_t response_end = 0;  // input offset where a complete response ended
    bool reusable = false;    // the connection could go back to the pool (no byte followed the response)

    bool operator==(const ResponseFeedOutcome& other) const;
    std::string describe() const;
};

// One exchange: parser.begin(response_to_head), `input` delivered in pieces of the given lengths
// (adding up to input.size()), then EOF. The parser's contract is checked on every call.
ResponseFeedOutcome feed_response(http::HttpResponseParser& parser, const http::HttpResponseLimits& limits,
                                  bool response_to_head, std::string_view input, std::span<const size_t> piece_lengths);

}  // namespace scepproxy::fuzz
