// Request feed for the HTTP request fuzz targets: HttpConnection's calling pattern, with the parser's contract checked on every call.
#include "test/fuzz/http_request_feed.h"

#include <algorithm>

#include "proxy/http/http_field_syntax.h"
#include "test/fuzz/fuzz_check.h"

namespace scepproxy::fuzz {
namespace {

using http::HttpErrorCode;
using http::ParseStatus;

bool within(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;  // an empty view may point anywhere
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_request_error(const http::HttpError& error) {
    FUZZ_CHECK(error.code != HttpErrorCode::none, "an error without a code");
    FUZZ_CHECK(error.status == http::HttpError::for_request(error.code).status, "status does not match the code");
    const uint16_t status = error.status;
    FUZZ_CHECK(status == 400 || status == 413 || status == 414 || status == 417 || status == 431 || status == 501 ||
                   status == 505,
               "a request error answers something other than 400/413/414/417/431/501/505");
    const std::string_view reason = error.reason();
    FUZZ_CHECK(!reason.empty() && reason != "none" && reason != "unknown", "no reason code");
    switch (error.code) {
        case HttpErrorCode::status_line_too_long:
        case HttpErrorCode::bad_status_line:
        case HttpErrorCode::upstream_body_too_large:
        case HttpErrorCode::unexpected_1xx:
        case HttpErrorCode::truncated_head:
        case HttpErrorCode::truncated_body:
        case HttpErrorCode::head_not_parsed:
            FUZZ_CHECK(false, "a response-only (or caller-bug) code from the request parser");
        default: break;
    }
}

// What parse_head() promises about a request it accepted.
void check_request_head(const http::HttpRequest& request, std::string_view input, const http::HttpLimits& limits) {
    FUZZ_CHECK(request.head_length > 0 && request.head_length <= input.size(), "head_length outside the input");
    const std::string_view head = input.substr(0, request.head_length);
    FUZZ_CHECK(head.ends_with("\r\n\r\n"), "a head that does not end in CRLF CRLF");
    // The parsers rely on this to scan heads for NUL and bare CR only when they fail.
    FUZZ_CHECK(http::check_head_bytes(head) == http::HttpErrorCode::none,
               "a head that parsed holds a NUL or a bare CR");
    for (std::string_view part : {request.method_text, request.target, request.path, request.query, request.host})
        FUZZ_CHECK(within(part, head), "a view outside the head");

    FUZZ_CHECK(http::is_token(request.method_text), "method is not a token");
    const http::HttpMethod expected_method = request.method_text == "GET"    ? http::HttpMethod::get
                                             : request.method_text == "POST" ? http::HttpMethod::post
                                             : request.method_text == "HEAD" ? http::HttpMethod::head
                                                                             : http::HttpMethod::other;
    FUZZ_CHECK(request.method == expected_method, "method enum does not match its text");

    FUZZ_CHECK(request.target.starts_with('/'), "target is not origin-form");
    FUZZ_CHECK(std::none_of(request.target.begin(), request.target.end(),
                            [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#'; }),
               "target holds SP, a CTL or '#'");
    const size_t question = request.target.find('?');
    FUZZ_CHECK(request.path == request.target.substr(0, question), "path is not the target before '?'");
    FUZZ_CHECK(request.query ==
                   (question == std::string_view::npos ? std::string_view() : request.target.substr(question + 1)),
               "query is not the target after '?'");

    FUZZ_CHECK(request.fields.size() <= limits.max_headers, "more fields than max_headers");
    size_t host_fields = 0;
    for (const http::HttpField& field : request.fields) {
        FUZZ_CHECK(within(field.name, head) && within(field.value, head), "a field view outside the head");
        FUZZ_CHECK(http::is_token(field.name), "field name is not a token");
        FUZZ_CHECK(http::trim_ows(field.value) == field.value, "field value not trimmed");
        FUZZ_CHECK(std::all_of(field.value.begin(), field.value.end(),
                               [](char c) { return http::is_field_value_char(static_cast<unsigned char>(c)); }),
                   "field value holds a CTL");
        if (http::equals_ignore_case(field.name, "host")) ++host_fields;
    }
    FUZZ_CHECK(host_fields <= 1, "more than one Host accepted");
    if (request.version == http::HttpVersion::http_1_1) FUZZ_CHECK(host_fields == 1, "HTTP/1.1 without Host accepted");

    FUZZ_CHECK(!(request.chunked && request.content_length), "both chunked and Content-Length");
    if (request.chunked) {
        FUZZ_CHECK(request.version == http::HttpVersion::http_1_1, "chunked in HTTP/1.0 accepted");
        FUZZ_CHECK(request.find("content-length") == nullptr, "Content-Length next to chunked accepted");
    }
    if (request.content_length) FUZZ_CHECK(*request.content_length <= limits.max_body_bytes, "CL over the limit");
    if (!request.chunked) FUZZ_CHECK(request.find("transfer-encoding") == nullptr, "a TE other than chunked accepted");
    if (request.expect_continue) FUZZ_CHECK(request.version == http::HttpVersion::http_1_1, "100-continue in 1.0");
}

ParsedRequest copy_request(const http::HttpRequest& request) {
    ParsedRequest copy;
    copy.method_text = request.method_text;
    copy.method = request.method;
    copy.target = request.target;
    copy.path = request.path;
    copy.query = request.query;
    copy.version = request.version;
    for (const http::HttpField& field : request.fields) copy.fields.emplace_back(field.name, field.value);
    copy.host = request.host;
    copy.content_length = request.content_length;
    copy.chunked = request.chunked;
    copy.keep_alive = request.keep_alive;
    copy.expect_continue = request.expect_continue;
    copy.head_length = request.head_length;
    return copy;
}

// One connection's input buffer and parser, driven like HttpConnection::process_buffered_requests().
class RequestFeed {
public:
    RequestFeed(http::HttpRequestParser& parser, const http::HttpLimits& limits) : limits_(limits), parser_(parser) {
        parser_.reset();
    }

    // False once the connection is over (rejected, or a request without keep-alive ended it).
    bool deliver(std::string_view piece) {
        buffered_.append(piece);
        for (;;) {
            if (!in_body_ && !parse_head()) return !over_;
            if (!read_body()) return !over_;
            if (!outcome_.requests.back().keep_alive) {
                outcome_.status = ParseStatus::done;
                over_ = true;
                return false;
            }
            parser_.reset();
        }
    }

    RequestFeedOutcome take_outcome() { return std::move(outcome_); }

private:
    bool reject() {
        outcome_.status = ParseStatus::error;
        outcome_.error = parser_.error();
        check_request_error(outcome_.error);
        over_ = true;
        return false;
    }

    // True when a head was parsed.
    bool parse_head() {
        if (request_start_ == buffered_.size()) return false;  // HttpConnection waits while its buffer is empty
        const std::string_view input = std::string_view(buffered_).substr(request_start_);
        const ParseStatus status = parser_.parse_head(input);
        if (status == ParseStatus::need_more) {
            FUZZ_CHECK(!parser_.error(), "need_more with an error set");
            return false;
        }
        if (status == ParseStatus::error) return reject();
        FUZZ_CHECK(!parser_.error(), "done with an error set");
        const http::HttpRequest& request = parser_.request();
        check_request_head(request, input, limits_);
        outcome_.requests.push_back(copy_request(request));
        in_body_ = true;
        body_offset_ = request_start_ + request.head_length;
        outcome_.requests.back().body.reserve(request.content_length.value_or(limits_.max_body_bytes));
        return true;
    }

    // True when the current request's body is complete.
    bool read_body() {
        ParsedRequest& request = outcome_.requests.back();
        if (parser_.has_body()) {
            const std::string_view input = std::string_view(buffered_).substr(body_offset_);
            const http::RequestBodyProgress progress = parser_.read_body(input, request.body);
            FUZZ_CHECK(progress.consumed <= input.size(), "consumed more than it was given");
            body_offset_ += progress.consumed;
            FUZZ_CHECK(request.body.size() <= limits_.max_body_bytes, "body over max_body_bytes");
            if (progress.status == ParseStatus::error) return reject();
            if (progress.status == ParseStatus::need_more) {
                FUZZ_CHECK(progress.consumed == input.size(), "need_more without using all of the input");
                return false;
            }
        } else {
            FUZZ_CHECK(!request.chunked && request.content_length.value_or(0) == 0,
                       "has_body() disagrees with framing");
        }
        if (request.content_length)
            FUZZ_CHECK(request.body.size() == *request.content_length, "body != Content-Length");
        request.body_complete = true;
        in_body_ = false;
        request_start_ = body_offset_;
        outcome_.bytes_used = body_offset_;
        return true;
    }

    http::HttpLimits limits_;
    http::HttpRequestParser& parser_;
    std::string buffered_;  // everything delivered so far: the connection never discards a request's bytes early
    size_t request_start_ = 0;
    size_t body_offset_ = 0;
    bool in_body_ = false;
    bool over_ = false;
    RequestFeedOutcome outcome_;
};

const char* status_name(ParseStatus status) {
    switch (status) {
        case ParseStatus::need_more: return "need_more";
        case ParseStatus::done: return "done";
        case ParseStatus::error: return "error";
    }
    return "?";
}

}  // namespace

http::HttpLimits fuzz_request_limits() {
    http::HttpLimits limits;
    limits.max_request_line_bytes = 1024;
    limits.max_header_bytes = 4096;
    limits.max_headers = 32;
    limits.max_body_bytes = 8192;
    return limits;
}

bool RequestFeedOutcome::operator==(const RequestFeedOutcome& other) const {
    return requests == other.requests && status == other.status && error.status == other.error.status &&
           error.code == other.error.code && bytes_used == other.bytes_used;
}

std::string RequestFeedOutcome::describe() const {
    std::string text = std::string("status=") + status_name(status) + " error=" + std::string(error.reason()) +
                       " bytes_used=" + std::to_string(bytes_used) + " requests=" + std::to_string(requests.size());
    for (const ParsedRequest& request : requests) {
        text += "\n  " + request.method_text + " " + request.target +
                " fields=" + std::to_string(request.fields.size()) +
                " head_length=" + std::to_string(request.head_length) +
                " content_length=" + (request.content_length ? std::to_string(*request.content_length) : "-") +
                " chunked=" + (request.chunked ? "1" : "0") + " keep_alive=" + (request.keep_alive ? "1" : "0") +
                " body=" + std::to_string(request.body.size()) + (request.body_complete ? " complete" : " partial");
    }
    return text;
}

RequestFeedOutcome feed_requests(http::HttpRequestParser& parser, const http::HttpLimits& limits,
                                 std::string_view input, std::span<const size_t> piece_lengths) {
    RequestFeed feed(parser, limits);
    size_t offset = 0;
    for (size_t length : piece_lengths) {
        FUZZ_CHECK(offset + length <= input.size(), "piece lengths run past the input");
        const bool open = feed.deliver(input.substr(offset, length));
        offset += length;
        if (!open) break;
    }
    return feed.take_outcome();
}

}  // namespace scepproxy::fuzz
