// Tests for response serialisation: heads, chunk framing, local text answers.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/net/response_writer.h"

using namespace scepproxy::proxy;

TEST_CASE("Content-Length heads", "[response_writer]") {
    ByteBuffer out;
    append_response_head(out, 200, "application/x-x509-ca-ra-cert", ResponseFraming::content_length, 1315,
                         ConnectionHeader::none);
    CHECK(out.view() ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/x-x509-ca-ra-cert\r\nContent-Length: 1315\r\n\r\n");
}

TEST_CASE("extra header lines go before Connection", "[response_writer]") {
    ByteBuffer out;
    append_response_head(out, 401, "application/json", ResponseFraming::content_length, 2, ConnectionHeader::close,
                         "WWW-Authenticate: Bearer\r\n");
    CHECK(out.view() ==
          "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
          "WWW-Authenticate: Bearer\r\nConnection: close\r\n\r\n");
}

TEST_CASE("chunked and close-delimited heads", "[response_writer]") {
    ByteBuffer chunked;
    append_response_head(chunked, 200, "", ResponseFraming::chunked, 0, ConnectionHeader::keep_alive);
    CHECK(chunked.view() == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
    ByteBuffer until_close;
    append_response_head(until_close, 502, "text/plain", ResponseFraming::until_close, 0, ConnectionHeader::close);
    CHECK(until_close.view() == "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
}

TEST_CASE("chunks in hex, empty data never ends the body early", "[response_writer]") {
    ByteBuffer out;
    append_chunk(out, std::string(26, 'x'));
    append_chunk(out, "");
    append_last_chunk(out);
    CHECK(out.view() == "1a\r\n" + std::string(26, 'x') + "\r\n0\r\n\r\n");
}

TEST_CASE("local text answers end in a newline and count it", "[response_writer]") {
    ByteBuffer out;
    append_text_response(out, 405, "method_not_allowed", ConnectionHeader::close, "Allow: GET, POST\r\n");
    CHECK(out.view() ==
          "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n"
          "Allow: GET, POST\r\nConnection: close\r\n\r\nmethod_not_allowed\n");
}
