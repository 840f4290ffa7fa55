// Status-line syntax, interim-response skipping, body framing and streaming body reading for upstream responses.
#include "proxy/http/http_response_parser.h"

#include <algorithm>
#include <limits>

namespace scepproxy::http {
namespace {

constexpr unsigned kMaxInterimResponses = 8;  // more 1xx than this in one exchange is a misbehaving upstream

uint64_t decoder_body_limit(const HttpResponseLimits& limits) {
    return limits.max_body_bytes.value_or(std::numeric_limits<uint64_t>::max());
}

}  // namespace

HttpResponseParser::HttpResponseParser(const HttpResponseLimits& limits)
    : limits_(limits),
      scanner_(HeadLimits{limits.max_status_line_bytes, limits.max_header_bytes, limits.max_headers},
               /*skip_leading_empty_lines=*/false),
      chunked_(ChunkedLimits{decoder_body_limit(limits), limits.max_header_bytes,
                             ChunkedLimits{}.max_extension_bytes}) {
    fields_.reserve(limits.max_headers);
}

void HttpResponseParser::begin(bool response_to_head) {
    scanner_.reset();
    chunked_.reset();
    fields_.clear();
    response_ = HttpResponse{};
    phase_ = Phase::head;
    response_to_head_ = response_to_head;
    head_start_ = 0;
    interim_count_ = 0;
    body_remaining_ = 0;
    body_bytes_ = 0;
    bytes_after_end_ = false;
    eof_seen_ = false;
    error_ = HttpError{};
}

ParseStatus HttpResponseParser::fail(HttpErrorCode code) {
    phase_ = Phase::failed;
    error_ = HttpError::for_upstream(code);
    return ParseStatus::error;
}

ResponseBodyPiece HttpResponseParser::fail_body(HttpErrorCode code, size_t consumed) {
    fail(code);
    return ResponseBodyPiece{BodyStatus::error, {}, consumed, false};
}

ResponseBodyPiece HttpResponseParser::finish_body(std::string_view data, size_t consumed, std::string_view input) {
    phase_ = Phase::done;
    const bool extra = consumed < input.size();
    bytes_after_end_ = bytes_after_end_ || extra;
    return ResponseBodyPiece{BodyStatus::done, data, consumed, extra};
}

HttpErrorCode HttpResponseParser::parse_status_line(std::string_view line) {
    // status-line = HTTP-version SP status-code SP [ reason-phrase ]
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) return HttpErrorCode::bad_status_line;
    switch (match_http_version(line.substr(0, space))) {
        case VersionMatch::http_1_1: response_.version = HttpVersion::http_1_1; break;
        case VersionMatch::http_1_0: response_.version = HttpVersion::http_1_0; break;
        case VersionMatch::unsupported: return HttpErrorCode::unsupported_version;
        case VersionMatch::malformed: return HttpErrorCode::bad_status_line;
    }

    const std::string_view rest = line.substr(space + 1);
    if (rest.size() < 3) return HttpErrorCode::bad_status_line;
    uint16_t status = 0;
    for (char c : rest.substr(0, 3)) {
        if (c < '0' || c > '9') return HttpErrorCode::bad_status_line;
        status = static_cast<uint16_t>(status * 10 + (c - '0'));
    }
    if (status < 100 || status > 599) return HttpErrorCode::bad_status_line;

    // "HTTP/1.1 200" without the SP before an empty reason is common enough to accept.
    std::string_view reason;
    if (rest.size() > 3) {
        if (rest[3] != ' ') return HttpErrorCode::bad_status_line;
        reason = rest.substr(4);
        if (!std::all_of(reason.begin(), reason.end(),
                         [](char c) { return is_field_value_char(static_cast<unsigned char>(c)); }))
            return HttpErrorCode::bad_status_line;
    }
    response_.status = status;
    response_.reason = reason;
    return HttpErrorCode::none;
}

HttpErrorCode HttpResponseParser::apply_framing(const FramingFields& framing) {
    response_.content_type = framing.content_type;
    response_.keep_alive = is_keep_alive(framing, response_.version);

    // Framing headers are checked even where they do not delimit a body: a response
    // that lies about them is not one to trust.
    const MessageFraming body = resolve_framing(framing, response_.version);
    if (body.error != HttpErrorCode::none) return body.error;
    response_.content_length = body.content_length;

    const bool bodyless = response_to_head_ || response_.status == 204 || response_.status == 304;
    if (bodyless) {
        response_.framing = BodyFraming::none;
    } else if (body.chunked) {
        response_.framing = BodyFraming::chunked;
    } else if (body.content_length) {
        response_.framing = BodyFraming::content_length;
        if (limits_.max_body_bytes && *body.content_length > *limits_.max_body_bytes)
            return HttpErrorCode::upstream_body_too_large;
        body_remaining_ = *body.content_length;
    } else {
        response_.framing = BodyFraming::until_close;
    }
    return HttpErrorCode::none;
}

ParseStatus HttpResponseParser::parse_head(std::string_view input) {
    switch (phase_) {
        case Phase::head: break;
        case Phase::failed: return ParseStatus::error;
        case Phase::body:
        case Phase::done: return ParseStatus::done;
    }
    if (input.size() < head_start_) begin(response_to_head_);  // the caller gave less than before: start over

    for (;;) {
        const std::string_view current = input.substr(head_start_);
        const ParseStatus scanned = scanner_.scan(current);
        if (scanned == ParseStatus::need_more) return scanned;
        if (scanned == ParseStatus::error) return fail(scanner_.error());

        const std::string_view head = current.substr(0, scanner_.head_length());
        const size_t line_length = scanner_.start_line_length();
        HttpErrorCode code = parse_status_line(head.substr(0, line_length));
        FramingFields framing;
        fields_.clear();
        if (code == HttpErrorCode::none) {
            const std::string_view section = head.substr(line_length + 2, head.size() - 2 - (line_length + 2));
            code = parse_field_section(section, fields_, framing);
        }
        if (code != HttpErrorCode::none) return fail(head_error(head, code));

        if (response_.status < 200) {
            // Interim response: checked, then skipped; the final response follows it.
            if (response_.status == 101 || ++interim_count_ > kMaxInterimResponses)
                return fail(HttpErrorCode::unexpected_1xx);
            head_start_ += head.size();
            scanner_.reset();
            continue;
        }

        response_.fields = fields_;
        code = apply_framing(framing);
        if (code != HttpErrorCode::none) return fail(code);
        response_.head_length = head_start_ + head.size();
        phase_ = response_.framing == BodyFraming::none ? Phase::done : Phase::body;
        return ParseStatus::done;
    }
}

ResponseBodyPiece HttpResponseParser::read_body(std::string_view input) {
    switch (phase_) {
        case Phase::body: break;
        case Phase::done: return finish_body({}, 0, input);
        case Phase::failed: return ResponseBodyPiece{BodyStatus::error, {}, 0, false};
        case Phase::head: return fail_body(HttpErrorCode::head_not_parsed, 0);
    }

    switch (response_.framing) {
        case BodyFraming::content_length: {
            const size_t take = static_cast<size_t>(std::min<uint64_t>(body_remaining_, input.size()));
            body_remaining_ -= take;
            body_bytes_ += take;
            const std::string_view data = input.substr(0, take);
            if (body_remaining_ == 0) return finish_body(data, take, input);
            return ResponseBodyPiece{BodyStatus::more, data, take, false};
        }
        case BodyFraming::chunked: {
            const ChunkedBodyDecoder::Step step = chunked_.decode_some(input);
            if (chunked_.failed()) return fail_body(chunked_.error(), step.consumed);
            body_bytes_ += step.data.size();
            if (chunked_.done()) return finish_body(step.data, step.consumed, input);
            return ResponseBodyPiece{BodyStatus::more, step.data, step.consumed, false};
        }
        case BodyFraming::until_close: {
            // Deliver up to the limit, fail on the first byte past it: the same bytes give the
            // same output however the reads split them.
            size_t take = input.size();
            if (limits_.max_body_bytes) {
                const uint64_t allowance = *limits_.max_body_bytes - std::min(body_bytes_, *limits_.max_body_bytes);
                if (allowance == 0 && !input.empty()) return fail_body(HttpErrorCode::upstream_body_too_large, 0);
                take = static_cast<size_t>(std::min<uint64_t>(allowance, take));
            }
            body_bytes_ += take;
            return ResponseBodyPiece{BodyStatus::more, input.substr(0, take), take, false};
        }
        case BodyFraming::none: break;
    }
    return finish_body({}, 0, input);
}

BodyStatus HttpResponseParser::finish_at_eof() {
    eof_seen_ = true;
    switch (phase_) {
        case Phase::done: return BodyStatus::done;
        case Phase::failed: return BodyStatus::error;
        case Phase::head: fail(HttpErrorCode::truncated_head); return BodyStatus::error;
        case Phase::body: break;
    }
    if (response_.framing == BodyFraming::until_close) {
        phase_ = Phase::done;
        return BodyStatus::done;
    }
    fail(HttpErrorCode::truncated_body);
    return BodyStatus::error;
}

bool HttpResponseParser::connection_reusable() const {
    return phase_ == Phase::done && response_.keep_alive && response_.framing != BodyFraming::until_close &&
           !bytes_after_end_ && !eof_seen_;
}

}  // namespace scepproxy::http
