// Feeds bytes to HttpRequestParser the way HttpConnection does (head-so-far, then body bytes, pipelined requests) and records what came out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/http/http_request_parser.h"

namespace scepproxy::fuzz {

// Small limits, so that inputs of a few KB reach every limit check.
http::HttpLimits fuzz_request_limits();

// One request as the parser saw it, copied out of its views so outcomes of different feeds compare.
struct ParsedRequest {
    std::string method_text;
    http::HttpMethod method = http::HttpMethod::other;
    std::string target;
    std::string path;
    std::string query;
    http::HttpVersion version = http::HttpVersion::http_1_1;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string host;
    std::optional<uint64_t> content_length;
    bool chunked = false;
    bool keep_alive = false;
    bool expect_continue = false;
    size_t head_length = 0;
    std::string body;
    bool body_complete = false;

    bool operator==(const ParsedRequest&) const = default;
};

struct RequestFeedOutcome {
    std::vector<ParsedRequest> requests;  // every head parsed, in order; only the last may be incomplete
    // need_more: waiting for bytes; done: a request without keep-alive ended the connection; error: rejected.
    http::ParseStatus status = http::ParseStatus::need_more;
    http::HttpError error;
    size_t bytes_used = 0;  // input bytes of the complete requests

    bool operator==(const RequestFeedOutcome& other) const;
    std::string describe() const;  // for the report when two feeds disagree
};

// Delivers `input` in pieces of the given lengths (they must add up to input.size()) to `parser`
// (reset first, so a parser can be reused like a connection's), checking the parser's contract on
// every call (FUZZ_CHECK aborts on a violation). `limits` are the ones the parser was made with.
RequestFeedOutcome feed_requests(http::HttpRequestParser& parser, const http::HttpLimits& limits,
                                 std::string_view input, std::span<const size_t> piece_lengths);

}  // namespace scepproxy::fuzz
