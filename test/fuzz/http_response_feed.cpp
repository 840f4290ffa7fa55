// Response feed for the upstream response fuzz target: UpstreamConnection's calling pattern, with the parser's contract checked on every call.
#include "test/fuzz/http_response_feed.h"

#include <algorithm>

#include "proxy/http/http_field_syntax.h"
#include "test/fuzz/fuzz_check.h"

namespace scepproxy::fuzz {
namespace {

using http::BodyFraming;
using http::BodyStatus;
using http::HttpErrorCode;
using http::ParseStatus;

bool within(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool is_field_value(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return http::is_field_value_char(static_cast<unsigned char>(c)); });
}

void check_response_error(const http::HttpError& error) {
    FUZZ_CHECK(error.code != HttpErrorCode::none, "an error without a code");
    FUZZ_CHECK(error.status == 502, "an upstream error that is not 502 for the device");
    const std::string_view reason = error.reason();
    FUZZ_CHECK(!reason.empty() && reason != "none" && reason != "unknown", "no reason code");
    switch (error.code) {
        case HttpErrorCode::request_line_too_long:
        case HttpErrorCode::body_too_large:
        case HttpErrorCode::bad_request_line:
        case HttpErrorCode::bad_request_target:
        case HttpErrorCode::missing_host:
        case HttpErrorCode::duplicate_host:
        case HttpErrorCode::bad_host:
        case HttpErrorCode::unsupported_expectation:
        case HttpErrorCode::head_not_parsed:
            FUZZ_CHECK(false, "a request-only (or caller-bug) code from the response parser");
        default: break;
    }
}

void check_response_head(const http::HttpResponse& response, std::string_view input, bool response_to_head,
                         const http::HttpResponseLimits& limits) {
    FUZZ_CHECK(response.head_length > 0 && response.head_length <= input.size(), "head_length outside the input");
    const std::string_view head = input.substr(0, response.head_length);
    FUZZ_CHECK(head.ends_with("\r\n\r\n"), "a head that does not end in CRLF CRLF");
    // The parsers rely on this to scan heads for NUL and bare CR only when they fail.
    FUZZ_CHECK(http::check_head_bytes(head) == http::HttpErrorCode::none,
               "a head that parsed holds a NUL or a bare CR");
    FUZZ_CHECK(response.status >= 200 && response.status <= 599, "an interim or out-of-range final status");
    FUZZ_CHECK(within(response.reason, head) && is_field_value(response.reason), "bad reason phrase");
    FUZZ_CHECK(within(response.content_type, head), "content_type outside the head");
    FUZZ_CHECK(response.fields.size() <= limits.max_headers, "more fields than max_headers");
    for (const http::HttpField& field : response.fields) {
        FUZZ_CHECK(within(field.name, head) && within(field.value, head), "a field view outside the head");
        FUZZ_CHECK(http::is_token(field.name), "field name is not a token");
        FUZZ_CHECK(http::trim_ows(field.value) == field.value && is_field_value(field.value), "bad field value");
    }
    const bool bodyless = response_to_head || response.status == 204 || response.status == 304;
    switch (response.framing) {
        case BodyFraming::none: FUZZ_CHECK(bodyless, "no body for a response that has one"); break;
        case BodyFraming::content_length:
            FUZZ_CHECK(!bodyless && response.content_length, "Content-Length framing without a length");
            if (limits.max_body_bytes) FUZZ_CHECK(*response.content_length <= *limits.max_body_bytes, "CL over limit");
            break;
        case BodyFraming::chunked:
            FUZZ_CHECK(!bodyless && !response.content_length, "chunked with a Content-Length");
            FUZZ_CHECK(response.version == http::HttpVersion::http_1_1, "chunked in HTTP/1.0 accepted");
            break;
        case BodyFraming::until_close:
            FUZZ_CHECK(!bodyless && !response.content_length, "read-until-close despite a length");
            FUZZ_CHECK(response.find("transfer-encoding") == nullptr, "read-until-close despite Transfer-Encoding");
            break;
    }
}

ParsedResponse copy_response(const http::HttpResponse& response) {
    ParsedResponse copy;
    copy.version = response.version;
    copy.status = response.status;
    copy.reason = response.reason;
    for (const http::HttpField& field : response.fields) copy.fields.emplace_back(field.name, field.value);
    copy.content_type = response.content_type;
    copy.content_length = response.content_length;
    copy.framing = response.framing;
    copy.keep_alive = response.keep_alive;
    copy.head_length = response.head_length;
    return copy;
}

// One exchange on an upstream connection, driven like UpstreamConnection::feed_response().
class ResponseFeed {
public:
    ResponseFeed(http::HttpResponseParser& parser, const http::HttpResponseLimits& limits, bool response_to_head)
        : parser_(parser), limits_(limits), response_to_head_(response_to_head) {
        parser_.begin(response_to_head);
    }

    // False once the exchange is over. Bytes after a complete response make the connection unusable.
    bool deliver(std::string_view piece, bool at_eof) {
        if (over_) {
            if (!piece.empty()) outcome_.reusable = false;  // bytes on an idle connection: it gets closed
            return false;
        }
        buffer_.append(piece);
        return feed(at_eof);
    }

    ResponseFeedOutcome take_outcome() { return std::move(outcome_); }

private:
    bool fail() {
        outcome_.error = parser_.error();
        check_response_error(outcome_.error);
        over_ = true;
        return false;
    }

    bool feed(bool at_eof) {
        if (!outcome_.head) {
            const ParseStatus status = parser_.parse_head(buffer_);
            if (status == ParseStatus::error) return fail();
            if (status == ParseStatus::need_more) {
                FUZZ_CHECK(!parser_.error(), "need_more with an error set");
                if (!at_eof) return true;
                FUZZ_CHECK(parser_.finish_at_eof() == BodyStatus::error, "EOF inside a head is not an error");
                FUZZ_CHECK(parser_.error().code == HttpErrorCode::truncated_head,
                           "EOF inside a head: not truncated_head");
                return fail();
            }
            const http::HttpResponse& response = parser_.response();
            check_response_head(response, buffer_, response_to_head_, limits_);
            outcome_.head = copy_response(response);
            consumed_ = response.head_length;
            buffer_.erase(0, response.head_length);
        }
        std::string_view input = buffer_;
        bool done = false;
        while (!input.empty()) {
            const http::ResponseBodyPiece piece = parser_.read_body(input);
            FUZZ_CHECK(piece.consumed <= input.size(), "consumed more than it was given");
            FUZZ_CHECK(within(piece.data, input), "body data outside the input");
            if (piece.status == BodyStatus::error) {
                FUZZ_CHECK(piece.data.empty(), "body data with an error");
                return fail();
            }
            FUZZ_CHECK(piece.data.size() <= piece.consumed, "more data than bytes consumed");
            outcome_.body.append(piece.data);
            if (limits_.max_body_bytes)
                FUZZ_CHECK(outcome_.body.size() <= *limits_.max_body_bytes, "body over the limit");
            input.remove_prefix(piece.consumed);
            consumed_ += piece.consumed;
            if (piece.status == BodyStatus::done) {
                FUZZ_CHECK(piece.bytes_after_end == !input.empty(), "bytes_after_end does not match the input left");
                done = true;
                break;
            }
            FUZZ_CHECK(!piece.bytes_after_end, "bytes_after_end before the end");
            if (piece.consumed == 0) break;
        }
        const bool bytes_left = !input.empty();
        buffer_.erase(0, buffer_.size() - input.size());
        if (!done && at_eof) {
            if (parser_.finish_at_eof() != BodyStatus::done) return fail();
            FUZZ_CHECK(outcome_.head->framing == BodyFraming::until_close, "EOF ended a delimited body");
            done = true;
        }
        if (!done && !at_eof) {
            // A body-less response is complete with no input at all.
            const http::ResponseBodyPiece piece = parser_.read_body(std::string_view());
            FUZZ_CHECK(piece.consumed == 0 && piece.data.empty(), "data from empty input");
            if (piece.status == BodyStatus::error) return fail();
            done = piece.status == BodyStatus::done;
        }
        if (!done) return true;

        const ParsedResponse& head = *outcome_.head;
        if (head.framing == BodyFraming::content_length) {
            FUZZ_CHECK(outcome_.body.size() == *head.content_length, "body length != Content-Length");
        }
        if (head.framing == BodyFraming::none) FUZZ_CHECK(outcome_.body.empty(), "a body-less response with a body");
        outcome_.complete = true;
        outcome_.response_end = consumed_;
        outcome_.reusable = !at_eof && parser_.connection_reusable();
        if (outcome_.reusable) {
            FUZZ_CHECK(!bytes_left, "reusable with bytes after the response");
            FUZZ_CHECK(head.keep_alive && head.framing != BodyFraming::until_close, "reusable but not persistent");
        }
        outcome_.reusable = outcome_.reusable && !bytes_left;
        over_ = true;
        return false;
    }

    http::HttpResponseParser& parser_;
    http::HttpResponseLimits limits_;
    bool response_to_head_;
    std::string buffer_;   // received and not yet consumed, like UpstreamConnection's in_
    size_t consumed_ = 0;  // input bytes used by the response so far
    bool over_ = false;
    ResponseFeedOutcome outcome_;
};

const char* framing_name(BodyFraming framing) {
    switch (framing) {
        case BodyFraming::none: return "none";
        case BodyFraming::content_length: return "content_length";
        case BodyFraming::chunked: return "chunked";
        case BodyFraming::until_close: return "until_close";
    }
    return "?";
}

}  // namespace

http::HttpResponseLimits fuzz_response_limits() {
    http::HttpResponseLimits limits;
    limits.max_status_line_bytes = 512;
    limits.max_header_bytes = 4096;
    limits.max_headers = 32;
    limits.max_body_bytes = 8192;
    return limits;
}

bool ResponseFeedOutcome::operator==(const ResponseFeedOutcome& other) const {
    return head == other.head && body == other.body && complete == other.complete &&
           error.status == other.error.status && error.code == other.error.code && response_end == other.response_end &&
           reusable == other.reusable;
}

std::string ResponseFeedOutcome::describe() const {
    std::string text = std::string("complete=") + (complete ? "1" : "0") + " error=" + std::string(error.reason()) +
                       " response_end=" + std::to_string(response_end) + " reusable=" + (reusable ? "1" : "0") +
                       " body=" + std::to_string(body.size());
    if (head) {
        text += "\n  status=" + std::to_string(head->status) + " fields=" + std::to_string(head->fields.size()) +
                " framing=" + framing_name(head->framing) +
                " content_length=" + (head->content_length ? std::to_string(*head->content_length) : "-") +
                " keep_alive=" + (head->keep_alive ? "1" : "0") + " head_length=" + std::to_string(head->head_length);
    }
    return text;
}

ResponseFeedOutcome feed_response(http::HttpResponseParser& parser, const http::HttpResponseLimits& limits,
                                  bool response_to_head, std::string_view input,
                                  std::span<const size_t> piece_lengths) {
    ResponseFeed feed(parser, limits, response_to_head);
    size_t offset = 0;
    for (size_t length : piece_lengths) {
        FUZZ_CHECK(offset + length <= input.size(), "piece lengths run past the input");
        feed.deliver(input.substr(offset, length), false);
        offset += length;
    }
    feed.deliver(std::string_view(), true);  // the upstream closes
    return feed.take_outcome();
}

}  // namespace scepproxy::fuzz
