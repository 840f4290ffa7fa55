// Unit tests of the shared field-syntax rules and of the incremental head scanner.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/http/http_field_syntax.h"
#include "proxy/http/http_head_scanner.h"

using namespace scepproxy::http;

TEST_CASE("parse_content_length accepts 1*DIGIT only and detects overflow") {
    CHECK(parse_content_length("0") == 0u);
    CHECK(parse_content_length("0042") == 42u);
    CHECK(parse_content_length("18446744073709551615") == 18446744073709551615ull);
    CHECK_FALSE(parse_content_length("18446744073709551616"));
    CHECK_FALSE(parse_content_length("99999999999999999999999"));
    CHECK_FALSE(parse_content_length(""));
    CHECK_FALSE(parse_content_length("+1"));
    CHECK_FALSE(parse_content_length("-1"));
    CHECK_FALSE(parse_content_length("0x1"));
    CHECK_FALSE(parse_content_length("1 "));
    CHECK_FALSE(parse_content_length("1,1"));
}

TEST_CASE("match_http_version tells supported, unsupported and malformed versions apart") {
    CHECK(match_http_version("HTTP/1.1") == VersionMatch::http_1_1);
    CHECK(match_http_version("HTTP/1.0") == VersionMatch::http_1_0);
    CHECK(match_http_version("HTTP/2.0") == VersionMatch::unsupported);
    CHECK(match_http_version("HTTP/0.9") == VersionMatch::unsupported);
    CHECK(match_http_version("HTTP/2") == VersionMatch::malformed);
    CHECK(match_http_version("HTTP/1.10") == VersionMatch::malformed);
    CHECK(match_http_version("Http/1.1") == VersionMatch::malformed);
    CHECK(match_http_version("HTTP/1,1") == VersionMatch::malformed);
}

TEST_CASE("list_contains_token splits on commas, trims OWS and ignores case") {
    CHECK(list_contains_token("close", "close"));
    CHECK(list_contains_token(" Keep-Alive ,\tTE", "keep-alive"));
    CHECK(list_contains_token("te,,close", "close"));
    CHECK_FALSE(list_contains_token("closed", "close"));
    CHECK_FALSE(list_contains_token("", "close"));
    CHECK_FALSE(list_contains_token("clo se", "close"));
}

TEST_CASE("token and field-value character classes") {
    CHECK(is_token("X-Custom_1.2~!"));
    CHECK_FALSE(is_token(""));
    CHECK_FALSE(is_token("a b"));
    CHECK_FALSE(is_token("a:b"));
    CHECK_FALSE(is_token("a\"b"));
    CHECK(is_field_value_char('\t'));
    CHECK(is_field_value_char(' '));
    CHECK(is_field_value_char(0x80));
    CHECK_FALSE(is_field_value_char('\0'));
    CHECK_FALSE(is_field_value_char('\r'));
    CHECK_FALSE(is_field_value_char('\n'));
    CHECK_FALSE(is_field_value_char(0x7f));
    CHECK(trim_ows(" \t a b \t") == "a b");
    CHECK(trim_ows("   ").empty());
}

TEST_CASE("parse_field_section never grows the field array past its reserved capacity") {
    std::vector<HttpField> fields;
    fields.reserve(2);
    const size_t capacity = fields.capacity();
    std::string section;
    for (size_t i = 0; i <= capacity; ++i) section += "X-" + std::to_string(i) + ": v\r\n";
    FramingFields framing;
    CHECK(parse_field_section(section, fields, framing) == HttpErrorCode::too_many_headers);
    CHECK(fields.capacity() == capacity);
}

TEST_CASE("the head scanner resumes where it stopped and reports where the head ends") {
    HeadScanner scanner(HeadLimits{100, 1000, 10}, false);
    const std::string head = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
    for (size_t i = 0; i < head.size() - 4; ++i) {
        REQUIRE(scanner.scan(std::string_view(head).substr(0, i)) == ParseStatus::need_more);
    }
    REQUIRE(scanner.scan(head) == ParseStatus::done);
    CHECK(scanner.head_length() == head.size() - 4);
    CHECK(scanner.start_line_offset() == 0);
    CHECK(scanner.start_line_length() == 15);
    CHECK(scanner.field_count() == 1);
}

TEST_CASE("the head scanner does not skip leading empty lines in responses") {
    HeadScanner scanner(HeadLimits{100, 1000, 10}, false);
    // The empty first line is taken as an (empty) start line, which the response parser rejects.
    REQUIRE(scanner.scan("\r\nHTTP/1.1 200 OK\r\n\r\n") == ParseStatus::done);
    CHECK(scanner.start_line_length() == 0);
}

TEST_CASE("error names are stable and statuses depend on the side") {
    CHECK(reason_code(HttpErrorCode::te_and_cl) == "te_and_cl");
    CHECK(HttpError::for_request(HttpErrorCode::te_and_cl).status == 400);
    CHECK(HttpError::for_request(HttpErrorCode::request_line_too_long).status == 414);
    CHECK(HttpError::for_request(HttpErrorCode::too_many_headers).status == 431);
    CHECK(HttpError::for_request(HttpErrorCode::body_too_large).status == 413);
    CHECK(HttpError::for_request(HttpErrorCode::unsupported_expectation).status == 417);
    CHECK(HttpError::for_request(HttpErrorCode::unsupported_transfer_coding).status == 501);
    CHECK(HttpError::for_request(HttpErrorCode::unsupported_version).status == 505);
    CHECK_FALSE(HttpError::for_request(HttpErrorCode::none));
    const HttpError upstream = HttpError::for_upstream(HttpErrorCode::body_too_large);
    CHECK(upstream.status == 502);
    CHECK(upstream.reason() == "upstream_body_too_large");
    CHECK(HttpError::for_upstream(HttpErrorCode::request_line_too_long).reason() == "status_line_too_long");
}

TEST_CASE("all_bytes_in finds an outsider at every position, in the four-byte steps and the tail") {
    ByteSet digits{};
    for (int c = '0'; c <= '9'; ++c) digits[c] = true;
    for (size_t length = 0; length <= 13; ++length) {
        const std::string good(length, '7');
        CHECK(all_bytes_in(good, digits));
        for (size_t at = 0; at < length; ++at) {
            for (char outsider : {'a', '\0', '\xff'}) {
                std::string bad = good;
                bad[at] = outsider;
                INFO("length " << length << ", outsider at " << at);
                CHECK_FALSE(all_bytes_in(bad, digits));
            }
        }
    }
}
