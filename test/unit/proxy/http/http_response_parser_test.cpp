// Unit tests of the streaming upstream response parser: framing, splits, interim responses, reuse, errors.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/http_response_parser.h"

using namespace scepproxy::http;

namespace {

HttpResponseLimits test_limits() {
    HttpResponseLimits limits;
    limits.max_status_line_bytes = 64;
    limits.max_header_bytes = 512;
    limits.max_headers = 8;
    return limits;
}

// What one exchange produced, fed in the given pieces (each piece arrives after the previous).
struct Exchange {
    ParseStatus head_status = ParseStatus::need_more;
    BodyStatus body_status = BodyStatus::more;
    uint16_t status = 0;
    std::string body;
    bool bytes_after_end = false;
    bool reusable = false;
    std::string error = "none";

    bool operator==(const Exchange&) const = default;
};

// Plays the proxy's read loop: the buffer grows with each piece; the head is re-given whole,
// the body bytes are passed once and consumed piece by piece.
Exchange run_exchange(const std::vector<std::string_view>& pieces, bool eof = false,
                      HttpResponseLimits limits = test_limits(), bool response_to_head = false) {
    HttpResponseParser parser(limits);
    parser.begin(response_to_head);
    Exchange out;
    std::string buffer;
    size_t body_offset = 0;
    for (std::string_view piece : pieces) {
        buffer.append(piece);
        if (out.head_status == ParseStatus::need_more) {
            out.head_status = parser.parse_head(buffer);
            if (out.head_status == ParseStatus::error) break;
            if (out.head_status == ParseStatus::need_more) continue;
            out.status = parser.response().status;
            body_offset = parser.response().head_length;
        }
        std::string_view in = std::string_view(buffer).substr(body_offset);
        while (out.body_status == BodyStatus::more) {
            const ResponseBodyPiece p = parser.read_body(in);
            out.body_status = p.status;
            out.body.append(p.data);
            out.bytes_after_end = out.bytes_after_end || p.bytes_after_end;
            in.remove_prefix(p.consumed);
            body_offset += p.consumed;
            if (in.empty()) break;
        }
        if (out.body_status != BodyStatus::more) break;
    }
    if (eof) {
        const BodyStatus at_eof = parser.finish_at_eof();
        if (out.body_status == BodyStatus::more) out.body_status = at_eof;
    }
    out.reusable = parser.connection_reusable();
    out.error = std::string(parser.error().reason());
    return out;
}

Exchange run_whole(std::string_view bytes, bool eof = false, HttpResponseLimits limits = test_limits()) {
    return run_exchange({bytes}, eof, limits);
}

std::string head_error(std::string_view bytes) {
    HttpResponseParser parser(test_limits());
    parser.begin();
    if (parser.parse_head(bytes) != ParseStatus::error) return "accepted";
    CHECK(parser.error().status == 502);
    return std::string(parser.error().reason());
}

}  // namespace

TEST_CASE("a 200 with Content-Length: status, fields, content type, body, reuse") {
    HttpResponseParser parser(test_limits());
    parser.begin();
    const std::string bytes =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/x-x509-ca-ra-cert\r\n"
        "Content-Length: 5\r\n"
        "Server: Microsoft-IIS/10.0\r\n"
        "\r\n"
        "hello";
    REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
    const HttpResponse& r = parser.response();
    CHECK(r.version == HttpVersion::http_1_1);
    CHECK(r.status == 200);
    CHECK(r.reason == "OK");
    CHECK(r.content_type == "application/x-x509-ca-ra-cert");
    CHECK(r.content_length == 5u);
    CHECK(r.framing == BodyFraming::content_length);
    CHECK(r.keep_alive);
    CHECK(r.fields.size() == 3);
    CHECK(r.find("server")->value == "Microsoft-IIS/10.0");
    CHECK(r.head_length == bytes.size() - 5);
    CHECK_FALSE(parser.connection_reusable());  // body not read yet

    const ResponseBodyPiece piece = parser.read_body(std::string_view(bytes).substr(r.head_length));
    CHECK(piece.status == BodyStatus::done);
    CHECK(piece.data == "hello");
    CHECK(piece.data.data() == bytes.data() + r.head_length);  // a view, not a copy
    CHECK(piece.consumed == 5);
    CHECK_FALSE(piece.bytes_after_end);
    CHECK(parser.connection_reusable());
}

TEST_CASE("a Content-Length body split across reads at every point gives the same result") {
    const std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world!";
    const Exchange whole = run_whole(bytes);
    REQUIRE(whole.body_status == BodyStatus::done);
    CHECK(whole.body == "hello world!");
    CHECK(whole.reusable);
    for (size_t split = 0; split <= bytes.size(); ++split) {
        INFO("split at " << split);
        const std::string_view view(bytes);
        CHECK(run_exchange({view.substr(0, split), view.substr(split)}) == whole);
    }
}

TEST_CASE("a chunked body split at every possible position gives the same output as one piece") {
    const std::string bytes =
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/x-pki-message\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n"
        "7\r\nCertRep\r\n"
        "1a;ext=v\r\nabcdefghijklmnopqrstuvwxyz\r\n"
        "0\r\nX-T: 1\r\n\r\n";
    const Exchange whole = run_whole(bytes);
    REQUIRE(whole.body_status == BodyStatus::done);
    CHECK(whole.body == "CertRepabcdefghijklmnopqrstuvwxyz");
    CHECK(whole.reusable);
    const std::string_view view(bytes);
    for (size_t split = 0; split <= bytes.size(); ++split) {
        INFO("split at " << split);
        CHECK(run_exchange({view.substr(0, split), view.substr(split)}) == whole);
    }
    // Three pieces, both split points everywhere.
    for (size_t a = 0; a <= bytes.size(); a += 3) {
        for (size_t b = a; b <= bytes.size(); b += 5) {
            INFO("splits at " << a << " and " << b);
            CHECK(run_exchange({view.substr(0, a), view.substr(a, b - a), view.substr(b)}) == whole);
        }
    }
}

TEST_CASE("a close-delimited body ends at EOF and never allows reuse") {
    const std::string bytes = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nPOSTPKIOperation\nSHA-256\n";
    HttpResponseParser parser(test_limits());
    parser.begin();
    REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
    CHECK(parser.response().framing == BodyFraming::until_close);
    std::string_view in = std::string_view(bytes).substr(parser.response().head_length);
    const ResponseBodyPiece first = parser.read_body(in.substr(0, 4));
    CHECK(first.status == BodyStatus::more);
    CHECK(first.data == "POST");
    const ResponseBodyPiece second = parser.read_body(in.substr(4));
    CHECK(second.status == BodyStatus::more);
    CHECK(second.consumed == in.size() - 4);
    CHECK(parser.finish_at_eof() == BodyStatus::done);
    CHECK_FALSE(parser.connection_reusable());

    const Exchange e = run_exchange({bytes}, /*eof=*/true);
    CHECK(e.body_status == BodyStatus::done);
    CHECK(e.body == "POSTPKIOperation\nSHA-256\n");
    CHECK_FALSE(e.reusable);
}

TEST_CASE("EOF before the end of a framed body or head is a truncation error") {
    const Exchange cl = run_exchange({"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"}, true);
    CHECK(cl.body_status == BodyStatus::error);
    CHECK(cl.error == "truncated_body");
    CHECK_FALSE(cl.reusable);
    const Exchange chunked = run_exchange({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"}, true);
    CHECK(chunked.error == "truncated_body");
    const Exchange head = run_exchange({"HTTP/1.1 200 OK\r\nContent-"}, true);
    CHECK(head.error == "truncated_head");
}

TEST_CASE("100 Continue and other interim responses are skipped before the final response") {
    const std::string bytes =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const Exchange whole = run_whole(bytes);
    CHECK(whole.status == 200);
    CHECK(whole.body == "ok");
    CHECK(whole.body_status == BodyStatus::done);
    CHECK(whole.reusable);
    const std::string_view view(bytes);
    for (size_t split = 0; split <= bytes.size(); ++split) {
        INFO("split at " << split);
        CHECK(run_exchange({view.substr(0, split), view.substr(split)}) == whole);
    }

    HttpResponseParser parser(test_limits());
    parser.begin();
    REQUIRE(parser.parse_head(bytes) == ParseStatus::done);
    CHECK(parser.response().head_length == bytes.size() - 2);
    CHECK(parser.response().fields.size() == 1);
    CHECK(parser.response().find("Link") == nullptr);  // the interim fields are gone
}

TEST_CASE("101 and endless interim responses are errors") {
    CHECK(head_error("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n") == "unexpected_1xx");
    std::string many;
    for (int i = 0; i < 9; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
    CHECK(head_error(many + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == "unexpected_1xx");
    std::string eight;
    for (int i = 0; i < 8; ++i) eight += "HTTP/1.1 100 Continue\r\n\r\n";
    CHECK(head_error(eight + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == "accepted");
}

TEST_CASE("framing errors: TE with CL, unsupported coding, bad or repeated Content-Length") {
    CHECK(head_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") == "te_and_cl");
    CHECK(head_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == "unsupported_transfer_coding");
    CHECK(head_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == "te_in_http_1_0");
    CHECK(head_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") ==
          "duplicate_content_length");
    CHECK(head_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n") == "bad_content_length");
    CHECK(head_error("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n") == "bad_content_length");
}

TEST_CASE("status line and field syntax are strict") {
    CHECK(head_error("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n") == "accepted");  // empty reason, no SP
    CHECK(head_error("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n") == "accepted");
    CHECK(head_error("HTTP/1.1 99 Low\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/1.1 600 High\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/1.1 2000 OK\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/1.1 20x OK\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/1.1  200 OK\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/1.1 200 O\x01K\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/2 200 OK\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/2.0 200 OK\r\n\r\n") == "unsupported_version");
    CHECK(head_error("\r\nHTTP/1.1 200 OK\r\n\r\n") == "bad_status_line");
    CHECK(head_error("HTTP/1.1 200 OK\r\nA : b\r\n\r\n") == "space_before_colon");
    CHECK(head_error("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n") == "obs_fold");
    CHECK(head_error("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n") == "bare_cr");
    CHECK(head_error(std::string("HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n", 27)) == "nul_byte");
    CHECK(head_error("HTTP/1.1 200 OK\nA: b\r\n\r\n") == "bare_lf");
    CHECK(head_error("HTTP/1.1 200 " + std::string(60, 'x') + "\r\n\r\n") == "status_line_too_long");
    std::string many = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 9; ++i) many += "X: y\r\n";
    CHECK(head_error(many + "\r\n") == "too_many_headers");
}

TEST_CASE("bad chunk framing in a response is an error and the connection is not reused") {
    const Exchange bad_size = run_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n");
    CHECK(bad_size.body_status == BodyStatus::error);
    CHECK(bad_size.error == "bad_chunk_size");
    CHECK_FALSE(bad_size.reusable);
    const Exchange no_crlf = run_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n");
    CHECK(no_crlf.body_status == BodyStatus::error);
    CHECK(no_crlf.error == "missing_chunk_crlf");
    CHECK(no_crlf.body == "abc");  // what came before the error was already streamed
}

TEST_CASE("204, 304 and responses to HEAD have no body") {
    const Exchange no_content = run_whole("HTTP/1.1 204 No Content\r\n\r\n");
    CHECK(no_content.body_status == BodyStatus::done);
    CHECK(no_content.body.empty());
    CHECK(no_content.reusable);
    CHECK(run_whole("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n").reusable);

    HttpResponseParser parser(test_limits());
    parser.begin(/*response_to_head=*/true);
    REQUIRE(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n") == ParseStatus::done);
    CHECK(parser.response().framing == BodyFraming::none);
    CHECK(parser.response().content_length == 1234u);
    const ResponseBodyPiece piece = parser.read_body({});
    CHECK(piece.status == BodyStatus::done);
    CHECK(piece.consumed == 0);
    CHECK(parser.connection_reusable());
}

TEST_CASE("keep-alive and close detection decide reuse") {
    CHECK(run_whole("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").reusable);
    CHECK_FALSE(run_whole("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").reusable);
    CHECK_FALSE(run_whole("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").reusable);
    CHECK(run_whole("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").reusable);
    CHECK_FALSE(run_whole("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody", true).reusable);  // until close
    // EOF right after a complete response: the connection is gone.
    CHECK_FALSE(run_whole("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true).reusable);
}

TEST_CASE("bytes after the end of a response are reported and forbid reuse") {
    const Exchange same_read = run_whole("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
    CHECK(same_read.body_status == BodyStatus::done);
    CHECK(same_read.body == "ok");
    CHECK(same_read.bytes_after_end);
    CHECK_FALSE(same_read.reusable);

    const Exchange chunked = run_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX");
    CHECK(chunked.bytes_after_end);
    CHECK_FALSE(chunked.reusable);
    CHECK(run_whole("HTTP/1.1 204 No Content\r\n\r\nX").bytes_after_end);

    // Arriving in a later read.
    HttpResponseParser parser(test_limits());
    parser.begin();
    REQUIRE(parser.parse_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == ParseStatus::done);
    CHECK(parser.read_body({}).status == BodyStatus::done);
    CHECK(parser.connection_reusable());
    const ResponseBodyPiece late = parser.read_body("HTTP/1.1 200 OK\r\n");
    CHECK(late.status == BodyStatus::done);
    CHECK(late.bytes_after_end);
    CHECK_FALSE(parser.connection_reusable());
}

TEST_CASE("the optional body limit applies to every framing") {
    HttpResponseLimits limits = test_limits();
    limits.max_body_bytes = 4;
    CHECK(run_whole("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", false, limits).body_status == BodyStatus::done);
    const Exchange cl = run_whole("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde", false, limits);
    CHECK(cl.head_status == ParseStatus::error);
    CHECK(cl.error == "upstream_body_too_large");
    const Exchange chunked =
        run_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n", false,
                  limits);
    CHECK(chunked.body_status == BodyStatus::error);
    CHECK(chunked.error == "upstream_body_too_large");
    CHECK(chunked.body == "ab");
    CHECK(run_exchange({"HTTP/1.1 200 OK\r\n\r\nab", "cd"}, true, limits).body_status == BodyStatus::done);
    // Read-until-close: exactly the allowed bytes are streamed, then the error, however reads split.
    for (const auto& pieces : {std::vector<std::string_view>{"HTTP/1.1 200 OK\r\n\r\nab", "cde"},
                               std::vector<std::string_view>{"HTTP/1.1 200 OK\r\n\r\nabcde"}}) {
        const Exchange close = run_exchange(pieces, true, limits);
        CHECK(close.body_status == BodyStatus::error);
        CHECK(close.error == "upstream_body_too_large");
        CHECK(close.body == "abcd");
    }
}

TEST_CASE("begin() resets the parser for the next exchange on a kept-alive connection") {
    HttpResponseParser parser(test_limits());
    parser.begin();
    REQUIRE(parser.parse_head("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n") == ParseStatus::done);
    CHECK(parser.read_body({}).status == BodyStatus::done);
    parser.begin();
    CHECK_FALSE(parser.connection_reusable());
    REQUIRE(parser.parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == ParseStatus::done);
    CHECK(parser.response().status == 200);
    CHECK(parser.response().framing == BodyFraming::chunked);
    CHECK(parser.read_body({}).status == BodyStatus::more);  // no body bytes yet
}
