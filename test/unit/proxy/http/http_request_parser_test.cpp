// Unit tests of the strict HTTP/1.1 request parser: limits, syntax, framing, persistence, Expect, pipelining.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "proxy/http/http_request_parser.h"

using namespace scepproxy::http;

namespace {

HttpLimits small_limits() {
    HttpLimits limits;
    limits.max_request_line_bytes = 64;
    limits.max_header_bytes = 256;
    limits.max_headers = 4;
    limits.max_body_bytes = 100;
    return limits;
}

// One-shot head parse; returns the status and leaves the result in `parser`.
ParseStatus parse(HttpRequestParser& parser, std::string_view bytes) { return parser.parse_head(bytes); }

// The reason code of a request that must be rejected by its head.
std::string rejection(std::string_view bytes, HttpLimits limits = small_limits()) {
    HttpRequestParser parser(limits);
    if (parser.parse_head(bytes) != ParseStatus::error) return "accepted";
    return std::string(parser.error().reason());
}

uint16_t rejection_status(std::string_view bytes, HttpLimits limits = small_limits()) {
    HttpRequestParser parser(limits);
    parser.parse_head(bytes);
    return parser.error().status;
}

// A request line "GET /aaa... HTTP/1.1" of exactly `length` bytes (without CRLF).
std::string request_line_of_length(size_t length) {
    const std::string fixed = "GET / HTTP/1.1";
    return "GET /" + std::string(length - fixed.size(), 'a') + " HTTP/1.1";
}

// A whole head of exactly `length` bytes, padded in one header value.
std::string head_of_length(size_t length) {
    const std::string start = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
    const std::string end = "\r\n\r\n";
    return start + std::string(length - start.size() - end.size(), 'p') + end;
}

}  // namespace

TEST_CASE("a simple GET is parsed into its parts") {
    HttpRequestParser parser(HttpLimits{});
    const std::string bytes =
        "GET /scep/abc/pkiclient.exe?operation=GetCACert&message=CA HTTP/1.1\r\n"
        "Host: scep.example.com:8080\r\n"
        "User-Agent:   curl/8 \t\r\n"
        "Accept: */*\r\n"
        "\r\n";
    REQUIRE(parse(parser, bytes) == ParseStatus::done);
    const HttpRequest& req = parser.request();
    CHECK(req.method == HttpMethod::get);
    CHECK(req.method_text == "GET");
    CHECK(req.target == "/scep/abc/pkiclient.exe?operation=GetCACert&message=CA");
    CHECK(req.path == "/scep/abc/pkiclient.exe");
    CHECK(req.query == "operation=GetCACert&message=CA");
    CHECK(req.version == HttpVersion::http_1_1);
    CHECK(req.host == "scep.example.com:8080");
    REQUIRE(req.fields.size() == 3);
    CHECK(req.fields[1].name == "User-Agent");
    CHECK(req.fields[1].value == "curl/8");
    REQUIRE(req.find("user-agent") != nullptr);
    CHECK(req.find("user-agent")->value == "curl/8");
    CHECK(req.find("x-missing") == nullptr);
    CHECK_FALSE(req.content_length);
    CHECK_FALSE(req.chunked);
    CHECK(req.keep_alive);
    CHECK_FALSE(req.expect_continue);
    CHECK(req.head_length == bytes.size());
    CHECK_FALSE(parser.has_body());
}

TEST_CASE("methods are recognised case-sensitively, other tokens are reported as other") {
    HttpRequestParser parser(small_limits());
    auto method_of = [&](std::string_view method) {
        parser.reset();
        const std::string bytes = std::string(method) + " / HTTP/1.1\r\nHost: h\r\n\r\n";
        REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
        CHECK(parser.request().method_text == method);
        return parser.request().method;
    };
    CHECK(method_of("GET") == HttpMethod::get);
    CHECK(method_of("POST") == HttpMethod::post);
    CHECK(method_of("HEAD") == HttpMethod::head);
    CHECK(method_of("PUT") == HttpMethod::other);
    CHECK(method_of("get") == HttpMethod::other);
    CHECK(rejection("G(ET / HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_line");
}

TEST_CASE("query is empty without '?' and empty after a bare '?'") {
    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head("GET /a HTTP/1.1\r\nHost: h\r\n\r\n") == ParseStatus::done);
    CHECK(parser.request().path == "/a");
    CHECK(parser.request().query.empty());
    parser.reset();
    REQUIRE(parser.parse_head("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n") == ParseStatus::done);
    CHECK(parser.request().path == "/a");
    CHECK(parser.request().query == "b?c");
}

TEST_CASE("request line limit: N bytes pass, N+1 bytes are 414") {
    const HttpLimits limits = small_limits();
    const size_t n = limits.max_request_line_bytes;
    {
        HttpRequestParser parser(limits);
        const std::string bytes = request_line_of_length(n) + "\r\nHost: h\r\n\r\n";
        REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
        CHECK(parser.request().target.size() == n - std::string_view("GET  HTTP/1.1").size());
    }
    {
        const std::string bytes = request_line_of_length(n + 1) + "\r\nHost: h\r\n\r\n";
        HttpRequestParser parser(limits);
        REQUIRE(parser.parse_head(bytes) == ParseStatus::error);
        CHECK(parser.error().status == 414);
        CHECK(parser.error().reason() == "request_line_too_long");
    }
}

TEST_CASE("request line limit is enforced as bytes arrive, before the CRLF") {
    const HttpLimits limits = small_limits();
    const size_t n = limits.max_request_line_bytes;
    HttpRequestParser parser(limits);
    const std::string at_limit = request_line_of_length(n);
    CHECK(parser.parse_head(at_limit) == ParseStatus::need_more);
    CHECK(parser.parse_head(at_limit + "\r") == ParseStatus::need_more);  // the CR may start the CRLF

    HttpRequestParser over(limits);
    const std::string too_long = request_line_of_length(n + 1);
    CHECK(over.parse_head(too_long.substr(0, n)) == ParseStatus::need_more);
    REQUIRE(over.parse_head(too_long) == ParseStatus::error);
    CHECK(over.error().status == 414);
}

TEST_CASE("header section limit: a head of N bytes passes, N+1 bytes is 431") {
    const HttpLimits limits = small_limits();
    const size_t n = limits.max_header_bytes;
    {
        HttpRequestParser parser(limits);
        const std::string head = head_of_length(n);
        REQUIRE(head.size() == n);
        REQUIRE(parser.parse_head(head + "trailing body bytes") == ParseStatus::done);
        CHECK(parser.request().head_length == n);
    }
    {
        HttpRequestParser parser(limits);
        const std::string head = head_of_length(n + 1);
        REQUIRE(parser.parse_head(head) == ParseStatus::error);
        CHECK(parser.error().status == 431);
        CHECK(parser.error().reason() == "header_too_large");
    }
    {
        // Incrementally: N bytes without the end of the head wait; the (N+1)th byte fails.
        HttpRequestParser parser(limits);
        const std::string head = head_of_length(n + 10);
        CHECK(parser.parse_head(std::string_view(head).substr(0, n)) == ParseStatus::need_more);
        REQUIRE(parser.parse_head(std::string_view(head).substr(0, n + 1)) == ParseStatus::error);
        CHECK(parser.error().status == 431);
    }
}

TEST_CASE("max_headers: N fields pass, N+1 fields are 431") {
    const HttpLimits limits = small_limits();
    std::string head = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (uint32_t i = 1; i < limits.max_headers; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
    {
        HttpRequestParser parser(limits);
        REQUIRE(parser.parse_head(head + "\r\n") == ParseStatus::done);
        CHECK(parser.request().fields.size() == limits.max_headers);
    }
    {
        HttpRequestParser parser(limits);
        REQUIRE(parser.parse_head(head + "X-Extra: v\r\n\r\n") == ParseStatus::error);
        CHECK(parser.error().status == 431);
        CHECK(parser.error().reason() == "too_many_headers");
    }
    {
        // Incrementally: the (N+1)th field line fails as soon as it is complete, before the head ends.
        HttpRequestParser parser(limits);
        CHECK(parser.parse_head(head) == ParseStatus::need_more);
        REQUIRE(parser.parse_head(head + "X-Extra: v\r\n") == ParseStatus::error);
        CHECK(parser.error().reason() == "too_many_headers");
    }
}

TEST_CASE("Content-Length must be a single plain decimal number") {
    auto with_cl = [](std::string_view fields) {
        return "POST / HTTP/1.1\r\nHost: h\r\n" + std::string(fields) + "\r\n";
    };
    CHECK(rejection(with_cl("Content-Length: 5\r\nContent-Length: 5\r\n")) == "duplicate_content_length");
    CHECK(rejection(with_cl("Content-Length: 5\r\nContent-Length: 6\r\n")) == "duplicate_content_length");
    CHECK(rejection(with_cl("Content-Length: 5, 5\r\n")) == "duplicate_content_length");
    CHECK(rejection(with_cl("Content-Length: 5,6\r\n")) == "duplicate_content_length");
    CHECK(rejection(with_cl("Content-Length: abc\r\n")) == "bad_content_length");
    CHECK(rejection(with_cl("Content-Length: +5\r\n")) == "bad_content_length");
    CHECK(rejection(with_cl("Content-Length: -5\r\n")) == "bad_content_length");
    CHECK(rejection(with_cl("Content-Length: 0x5\r\n")) == "bad_content_length");
    CHECK(rejection(with_cl("Content-Length: 5 5\r\n")) == "bad_content_length");
    CHECK(rejection(with_cl("Content-Length: 5.0\r\n")) == "bad_content_length");
    CHECK(rejection(with_cl("Content-Length:\r\n")) == "bad_content_length");
    CHECK(rejection(with_cl("Content-Length: 18446744073709551616\r\n")) == "bad_content_length");  // 2^64
    CHECK(rejection_status(with_cl("Content-Length: +5\r\n")) == 400);

    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head(with_cl("content-length: \t 007 \r\n")) == ParseStatus::done);
    REQUIRE(parser.request().content_length);
    CHECK(*parser.request().content_length == 7);
}

TEST_CASE("Content-Length over max_body_bytes is 413 from the head alone") {
    const HttpLimits limits = small_limits();
    const std::string at_limit =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(limits.max_body_bytes) + "\r\n\r\n";
    HttpRequestParser parser(limits);
    CHECK(parser.parse_head(at_limit) == ParseStatus::done);

    const std::string over =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(limits.max_body_bytes + 1) + "\r\n\r\n";
    CHECK(rejection(over) == "body_too_large");
    CHECK(rejection_status(over) == 413);
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n") == 413);
}

TEST_CASE("Transfer-Encoding: only exactly chunked, never with Content-Length or in HTTP/1.0") {
    CHECK(rejection("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") ==
          "te_and_cl");
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          400);
    CHECK(rejection("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n") == "unsupported_transfer_coding");
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n") == 501);
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") == 501);
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n") == 501);
    CHECK(rejection("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          "duplicate_transfer_encoding");
    CHECK(rejection("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == "te_in_http_1_0");

    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n") ==
            ParseStatus::done);
    CHECK(parser.request().chunked);
    CHECK(parser.has_body());
}

TEST_CASE("field syntax: obs-fold, whitespace before colon, bad names and values are 400") {
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n") == "obs_fold");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n") == "obs_fold");
    CHECK(rejection("GET / HTTP/1.1\r\n Host: h\r\n\r\n") == "obs_fold");
    CHECK(rejection("GET / HTTP/1.1\r\nHost : h\r\n\r\n") == "space_before_colon");
    CHECK(rejection("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n") == "space_before_colon");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX A: v\r\n\r\n") == "bad_header_name");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n") == "bad_header_name");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n") == "bad_header_name");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n") == "missing_colon");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n") == "bad_header_value");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n") == "bad_header_value");
    CHECK(rejection_status("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n") == 400);

    // obs-text and HTAB are allowed inside values.
    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head("GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\tok\r\n\r\n") == ParseStatus::done);
    CHECK(parser.request().find("X-A")->value == "caf\xc3\xa9\tok");
}

TEST_CASE("NUL, bare CR and bare LF are 400 wherever they are") {
    using namespace std::string_literals;
    CHECK(rejection("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"s) == "nul_byte");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"s) == "nul_byte");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX\0A: v\r\n\r\n"s) == "nul_byte");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n") == "bare_cr");
    CHECK(rejection("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n") == "bare_cr");
    CHECK(rejection("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n") == "bare_cr");
    // Named first even when an earlier part of the head is wrong too (the bytes are checked only
    // after the parse failed).
    CHECK(rejection("GET /a#b HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"s) == "nul_byte");
    CHECK(rejection("GET /a#b HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n") == "bare_cr");
    CHECK(rejection("GET / HTTP/1.1\nHost: h\r\n\r\n") == "bare_lf");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\n\r\n") == "bare_lf");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: h\r\n\n") == "bare_lf");
    CHECK(rejection_status("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n") == 400);
    CHECK(rejection_status("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"s) == 400);
}

TEST_CASE("request line: exactly one SP between parts, origin-form, HTTP/1.0 or 1.1") {
    CHECK(rejection("GET  / HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection("GET / HTTP/1.1 \r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection("GET /\r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection("GET\r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection(" GET / HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_target");
    CHECK(rejection("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_target");
    CHECK(rejection("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_target");
    CHECK(rejection("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_target");
    CHECK(rejection("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n") == "bad_request_target");
    CHECK(rejection("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == "unsupported_version");
    CHECK(rejection_status("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
    CHECK(rejection_status("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == 505);
    CHECK(rejection_status("GET / HTTP/0.9\r\nHost: h\r\n\r\n") == 505);
    CHECK(rejection("GET / http/1.1\r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection("GET / HTTP/1.1x\r\nHost: h\r\n\r\n") == "bad_request_line");
    CHECK(rejection("GET / HTTP/11\r\nHost: h\r\n\r\n") == "bad_request_line");
}

TEST_CASE("Host: required in HTTP/1.1, optional in HTTP/1.0, never twice") {
    CHECK(rejection("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") == "missing_host");
    CHECK(rejection_status("GET / HTTP/1.1\r\n\r\n") == 400);
    CHECK(rejection("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") == "duplicate_host");
    CHECK(rejection("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n") == "duplicate_host");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n") == "bad_host");
    CHECK(rejection("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == "bad_host");

    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head("GET / HTTP/1.0\r\n\r\n") == ParseStatus::done);
    CHECK(parser.request().version == HttpVersion::http_1_0);
    CHECK(parser.request().host.empty());
    parser.reset();
    REQUIRE(parser.parse_head("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") == ParseStatus::done);
    CHECK(parser.request().host == "[::1]:8080");
}

TEST_CASE("keep-alive follows the version and the Connection options") {
    auto keep_alive = [](std::string_view bytes) {
        HttpRequestParser parser(small_limits());
        REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
        return parser.request().keep_alive;
    };
    CHECK(keep_alive("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nConnection: close\r\n\r\n"));
    CHECK(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.0\r\n\r\n"));
    CHECK(keep_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
}

TEST_CASE("Expect: 100-continue is exposed, other expectations are 417, HTTP/1.0 ignores Expect") {
    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n") ==
            ParseStatus::done);
    CHECK(parser.request().expect_continue);
    parser.reset();
    REQUIRE(parser.parse_head("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n") == ParseStatus::done);
    CHECK_FALSE(parser.request().expect_continue);

    CHECK(rejection("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n") == "unsupported_expectation");
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n") == 417);
    CHECK(rejection_status("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, foo\r\n\r\n") == 417);

    parser.reset();
    REQUIRE(parser.parse_head("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n") ==
            ParseStatus::done);
    CHECK_FALSE(parser.request().expect_continue);
}

TEST_CASE("empty lines before the request line are skipped and counted in the head") {
    HttpRequestParser parser(small_limits());
    const std::string bytes = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
    CHECK(parser.request().method == HttpMethod::get);
    CHECK(parser.request().head_length == bytes.size());
}

TEST_CASE("Content-Length body arrives in pieces and stops at its length") {
    HttpRequestParser parser(small_limits());
    const std::string bytes = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789NEXT";
    REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
    REQUIRE(parser.has_body());
    std::string body;
    std::string_view rest = std::string_view(bytes).substr(parser.request().head_length);
    RequestBodyProgress progress = parser.read_body(rest.substr(0, 4), body);
    CHECK(progress.status == ParseStatus::need_more);
    CHECK(progress.consumed == 4);
    rest.remove_prefix(4);
    progress = parser.read_body(rest, body);
    CHECK(progress.status == ParseStatus::done);
    CHECK(progress.consumed == 6);
    CHECK(body == "0123456789");
}

TEST_CASE("a request without body is done at once, and read_body before the head is an error") {
    HttpRequestParser parser(small_limits());
    std::string body;
    CHECK(parser.read_body("x", body).status == ParseStatus::error);
    CHECK(parser.error().reason() == "head_not_parsed");
    parser.reset();
    REQUIRE(parser.parse_head("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n") == ParseStatus::done);
    CHECK_FALSE(parser.has_body());
    const RequestBodyProgress progress = parser.read_body("GET /next", body);
    CHECK(progress.status == ParseStatus::done);
    CHECK(progress.consumed == 0);
}

TEST_CASE("two pipelined requests in one buffer are both parsed, the second right after the first's body") {
    const std::string first = "POST /one HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    const std::string second = "GET /two?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string buffer = first + second;

    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head(buffer) == ParseStatus::done);
    CHECK(parser.request().path == "/one");
    std::string body;
    const size_t head_length = parser.request().head_length;
    const RequestBodyProgress progress = parser.read_body(std::string_view(buffer).substr(head_length), body);
    REQUIRE(progress.status == ParseStatus::done);
    CHECK(body == "hello");
    const size_t next = head_length + progress.consumed;
    CHECK(next == first.size());

    parser.reset();
    REQUIRE(parser.parse_head(std::string_view(buffer).substr(next)) == ParseStatus::done);
    CHECK(parser.request().path == "/two");
    CHECK(parser.request().query == "x=1");
    CHECK(parser.request().head_length == second.size());
}

TEST_CASE("pipelined chunked request followed by another request") {
    const std::string first =
        "POST /one HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    const std::string second = "GET /two HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string buffer = first + second;
    HttpRequestParser parser(small_limits());
    REQUIRE(parser.parse_head(buffer) == ParseStatus::done);
    std::string body;
    const size_t head_length = parser.request().head_length;
    const RequestBodyProgress progress = parser.read_body(std::string_view(buffer).substr(head_length), body);
    REQUIRE(progress.status == ParseStatus::done);
    CHECK(body == "abc");
    CHECK(head_length + progress.consumed == first.size());
    parser.reset();
    REQUIRE(parser.parse_head(std::string_view(buffer).substr(first.size())) == ParseStatus::done);
    CHECK(parser.request().path == "/two");
}

namespace {

// Everything a parse produced, in a comparable form.
struct ParsedRequest {
    ParseStatus head_status = ParseStatus::need_more;
    ParseStatus body_status = ParseStatus::need_more;
    std::string error;
    std::string method, target, host;
    std::vector<std::pair<std::string, std::string>> fields;
    bool chunked = false;
    size_t head_length = 0;
    size_t body_consumed = 0;
    std::string body;

    bool operator==(const ParsedRequest&) const = default;
};

void record_head(const HttpRequestParser& parser, ParsedRequest& out) {
    const HttpRequest& req = parser.request();
    out.method = std::string(req.method_text);
    out.target = std::string(req.target);
    out.host = std::string(req.host);
    for (const HttpField& f : req.fields) out.fields.emplace_back(std::string(f.name), std::string(f.value));
    out.chunked = req.chunked;
    out.head_length = req.head_length;
}

ParsedRequest parse_one_shot(std::string_view bytes, HttpLimits limits) {
    ParsedRequest out;
    HttpRequestParser parser(limits);
    out.head_status = parser.parse_head(bytes);
    if (out.head_status == ParseStatus::done) {
        record_head(parser, out);
        const RequestBodyProgress p = parser.read_body(bytes.substr(out.head_length), out.body);
        out.body_status = p.status;
        out.body_consumed = p.consumed;
    }
    out.error = std::string(parser.error().reason());
    return out;
}

// Feeds the buffer one byte at a time: the head is re-given whole each time (in a fresh copy, so
// its address changes), the body bytes one by one.
ParsedRequest parse_byte_by_byte(std::string_view bytes, HttpLimits limits) {
    ParsedRequest out;
    HttpRequestParser parser(limits);
    size_t i = 0;
    while (i < bytes.size() && out.head_status == ParseStatus::need_more) {
        ++i;
        const std::string copy(bytes.substr(0, i));
        out.head_status = parser.parse_head(copy);
        if (out.head_status == ParseStatus::done) record_head(parser, out);
    }
    if (out.head_status == ParseStatus::done) {
        size_t offset = out.head_length;
        RequestBodyProgress p = parser.read_body({}, out.body);  // done at once for bodiless requests
        while (p.status == ParseStatus::need_more && offset < bytes.size()) {
            p = parser.read_body(bytes.substr(offset, 1), out.body);
            offset += p.consumed;
            out.body_consumed += p.consumed;
        }
        out.body_status = p.status;
    }
    out.error = std::string(parser.error().reason());
    return out;
}

}  // namespace

TEST_CASE("a request fed one byte at a time parses exactly like the one-shot parse") {
    const std::string valid =
        "POST /scep/t/pkiclient.exe?operation=PKIOperation HTTP/1.1\r\n"
        "Host: scep.example.com\r\n"
        "Content-Type: application/x-pki-message\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n"
        "5;name=value\r\nhello\r\n"
        "A\r\n0123456789\r\n"
        "0\r\nX-Trailer: t\r\n\r\n"
        "GET /next HTTP/1.1\r\n";
    const ParsedRequest one_shot = parse_one_shot(valid, small_limits());
    REQUIRE(one_shot.head_status == ParseStatus::done);
    REQUIRE(one_shot.body_status == ParseStatus::done);
    CHECK(one_shot.body == "hello0123456789");
    CHECK(one_shot.head_length + one_shot.body_consumed ==
          valid.size() - std::string_view("GET /next HTTP/1.1\r\n").size());
    CHECK(parse_byte_by_byte(valid, small_limits()) == one_shot);

    // Rejections, too, are the same whether the bytes come at once or one by one.
    for (std::string_view bad : {
             std::string_view(
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
             std::string_view("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
             std::string_view("POST / HTTP/1.1\r\nHost : h\r\n\r\n"),
             std::string_view("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"),
         }) {
        const ParsedRequest expected = parse_one_shot(bad, small_limits());
        CHECK_FALSE(expected.error == "none");
        CHECK(parse_byte_by_byte(bad, small_limits()) == expected);
    }
}

TEST_CASE("chunked request bodies: bad sizes, missing CRLF, oversize are rejected with their status") {
    auto body_error = [](std::string_view chunked_body) {
        HttpRequestParser parser(small_limits());
        const std::string bytes =
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(chunked_body);
        REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
        std::string body;
        const RequestBodyProgress p =
            parser.read_body(std::string_view(bytes).substr(parser.request().head_length), body);
        if (p.status != ParseStatus::error) return std::pair<uint16_t, std::string>{0, "accepted"};
        return std::pair<uint16_t, std::string>{parser.error().status, std::string(parser.error().reason())};
    };
    using Result = std::pair<uint16_t, std::string>;
    CHECK(body_error("g\r\nx\r\n0\r\n\r\n") == Result{400, "bad_chunk_size"});
    CHECK(body_error("0x5\r\nhello\r\n0\r\n\r\n") == Result{400, "bad_chunk_size"});
    CHECK(body_error("+5\r\nhello\r\n0\r\n\r\n") == Result{400, "bad_chunk_size"});
    CHECK(body_error("5\r\nhelloXY0\r\n\r\n") == Result{400, "missing_chunk_crlf"});
    CHECK(body_error("5\r\nhello\n0\r\n\r\n") == Result{400, "missing_chunk_crlf"});
    // max_body_bytes is 100: 0x64 passes, 0x65 is 413 before any data byte.
    CHECK(body_error("64\r\n" + std::string(100, 'x') + "\r\n0\r\n\r\n") == Result{0, "accepted"});
    CHECK(body_error("65\r\n") == Result{413, "body_too_large"});
    CHECK(body_error("32\r\n" + std::string(50, 'x') + "\r\n33\r\n") == Result{413, "body_too_large"});
}
