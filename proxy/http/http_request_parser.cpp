// Request-line syntax, request semantics (Host, Expect, framing, persistence) and body reading for device requests.
#include "proxy/http/http_request_parser.h"

#include <algorithm>

namespace scepproxy::http {
namespace {

// Origin-form characters: any VCHAR but '#' (no fragment). Percent-decoding and
// query parsing are the router's business; SP and CTLs never reach here.
constexpr ByteSet make_target_chars() {
    ByteSet set{};
    for (int c = 0x21; c < 0x7f; ++c) set[c] = c != '#';
    return set;
}
constexpr ByteSet kTargetChars = make_target_chars();

// uri-host [ ":" port ] characters (RFC 3986: reg-name, IPv4, IP-literal in brackets).
bool is_host_char(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '-':
        case '.':
        case '_':
        case '~':
        case '!':
        case '$':
        case '&':
        case '\'':
        case '(':
        case ')':
        case '*':
        case '+':
        case ',':
        case ';':
        case '=':
        case ':':
        case '[':
        case ']':
        case '%': return true;
        default: return false;
    }
}

HttpMethod method_from_text(std::string_view text) {
    // Methods are case-sensitive (RFC 9110 §9.1): "get" is some other method.
    if (text == "GET") return HttpMethod::get;
    if (text == "POST") return HttpMethod::post;
    if (text == "HEAD") return HttpMethod::head;
    return HttpMethod::other;
}

}  // namespace

HttpRequestParser::HttpRequestParser(const HttpLimits& limits)
    : limits_(limits),
      scanner_(HeadLimits{limits.max_request_line_bytes, limits.max_header_bytes, limits.max_headers},
               /*skip_leading_empty_lines=*/true),
      chunked_(ChunkedLimits{limits.max_body_bytes, limits.max_header_bytes, ChunkedLimits{}.max_extension_bytes}) {
    fields_.reserve(limits.max_headers);
}

void HttpRequestParser::reset() {
    scanner_.reset();
    chunked_.reset();
    fields_.clear();
    request_ = HttpRequest{};
    phase_ = Phase::head;
    body_remaining_ = 0;
    error_ = HttpError{};
}

ParseStatus HttpRequestParser::fail(HttpErrorCode code) {
    phase_ = Phase::failed;
    error_ = HttpError::for_request(code);
    return ParseStatus::error;
}

bool HttpRequestParser::has_body() const { return request_.chunked || request_.content_length.value_or(0) > 0; }

HttpErrorCode HttpRequestParser::parse_request_line(std::string_view line) {
    // request-line = method SP request-target SP HTTP-version: exactly one SP between parts.
    const size_t first_space = line.find(' ');
    if (first_space == std::string_view::npos) return HttpErrorCode::bad_request_line;
    const size_t second_space = line.find(' ', first_space + 1);
    if (second_space == std::string_view::npos) return HttpErrorCode::bad_request_line;

    const std::string_view method = line.substr(0, first_space);
    const std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
    const std::string_view version = line.substr(second_space + 1);
    if (!is_token(method) || target.empty()) return HttpErrorCode::bad_request_line;

    switch (match_http_version(version)) {
        case VersionMatch::http_1_1: request_.version = HttpVersion::http_1_1; break;
        case VersionMatch::http_1_0: request_.version = HttpVersion::http_1_0; break;
        case VersionMatch::unsupported: return HttpErrorCode::unsupported_version;
        case VersionMatch::malformed: return HttpErrorCode::bad_request_line;
    }

    // Only origin-form: absolute-form ("http://..."), authority-form and '*' are refused.
    if (target.front() != '/') return HttpErrorCode::bad_request_target;
    if (!all_bytes_in(target, kTargetChars)) return HttpErrorCode::bad_request_target;

    request_.method = method_from_text(method);
    request_.method_text = method;
    request_.target = target;
    const size_t question = target.find('?');
    request_.path = target.substr(0, question);
    request_.query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    return HttpErrorCode::none;
}

HttpErrorCode HttpRequestParser::apply_request_semantics(const FramingFields& framing) {
    // Host (RFC 9112 §3.2): required in HTTP/1.1, never repeated, and a plausible host.
    if (framing.host_count > 1) return HttpErrorCode::duplicate_host;
    if (framing.host_count == 0 && request_.version == HttpVersion::http_1_1) return HttpErrorCode::missing_host;
    if (!std::all_of(framing.host.begin(), framing.host.end(),
                     [](char c) { return is_host_char(static_cast<unsigned char>(c)); }))
        return HttpErrorCode::bad_host;
    request_.host = framing.host;

    const MessageFraming body = resolve_framing(framing, request_.version);
    if (body.error != HttpErrorCode::none) return body.error;
    request_.content_length = body.content_length;
    request_.chunked = body.chunked;
    if (body.content_length && *body.content_length > limits_.max_body_bytes) return HttpErrorCode::body_too_large;

    // An HTTP/1.0 server must ignore 100-continue (RFC 9110 §10.1.1), so Expect means nothing there.
    if (framing.expect_count > 0 && request_.version == HttpVersion::http_1_1) {
        if (framing.expect_count > 1 || !equals_ignore_case(framing.expect, "100-continue"))
            return HttpErrorCode::unsupported_expectation;
        request_.expect_continue = true;
    }

    request_.keep_alive = is_keep_alive(framing, request_.version);
    return HttpErrorCode::none;
}

ParseStatus HttpRequestParser::parse_head(std::string_view input) {
    switch (phase_) {
        case Phase::head: break;
        case Phase::failed: return ParseStatus::error;
        case Phase::body:
        case Phase::done: return ParseStatus::done;
    }
    const ParseStatus scanned = scanner_.scan(input);
    if (scanned == ParseStatus::need_more) return scanned;
    if (scanned == ParseStatus::error) return fail(scanner_.error());

    const std::string_view head = input.substr(0, scanner_.head_length());
    const size_t line_offset = scanner_.start_line_offset();
    const size_t line_length = scanner_.start_line_length();
    HttpErrorCode code = parse_request_line(head.substr(line_offset, line_length));
    FramingFields framing;
    fields_.clear();
    if (code == HttpErrorCode::none) {
        // The field lines sit between the request line's CRLF and the final empty line's CRLF.
        const size_t fields_offset = line_offset + line_length + 2;
        code = parse_field_section(head.substr(fields_offset, head.size() - 2 - fields_offset), fields_, framing);
    }
    if (code != HttpErrorCode::none) return fail(head_error(head, code));
    request_.fields = fields_;

    code = apply_request_semantics(framing);
    if (code != HttpErrorCode::none) return fail(code);

    request_.head_length = head.size();
    body_remaining_ = request_.content_length.value_or(0);
    phase_ = has_body() ? Phase::body : Phase::done;
    return ParseStatus::done;
}

RequestBodyProgress HttpRequestParser::read_body(std::string_view input, std::string& body) {
    switch (phase_) {
        case Phase::body: break;
        case Phase::done: return {ParseStatus::done, 0};
        case Phase::failed: return {ParseStatus::error, 0};
        case Phase::head: fail(HttpErrorCode::head_not_parsed); return {ParseStatus::error, 0};
    }

    if (!request_.chunked) {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(body_remaining_, input.size()));
        body.append(input.substr(0, take));
        body_remaining_ -= take;
        if (body_remaining_ == 0) phase_ = Phase::done;
        return {phase_ == Phase::done ? ParseStatus::done : ParseStatus::need_more, take};
    }

    const size_t used = chunked_.decode_into(input, body);
    if (chunked_.failed()) return {fail(chunked_.error()), used};
    if (chunked_.done()) {
        phase_ = Phase::done;
        return {ParseStatus::done, used};
    }
    return {ParseStatus::need_more, used};
}

}  // namespace scepproxy::http
