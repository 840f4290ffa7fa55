// Tests for the GET `message=` parameter: every encoding clients send, rejections, and the upstream encoding.
#include "pkcs7/scep_message_encoding.h"

#include <random>

#include <catch2/catch.hpp>

#include "test/unit/pkcs7/pkcs7_fixtures.h"

namespace scepproxy::pkcs7 {
namespace {

constexpr std::size_t kLimit = 64 * 1024;

std::vector<std::uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

std::vector<std::uint8_t> decode_ok(std::string_view raw, std::size_t limit = kLimit) {
    MessageParameterDecode decoded = decode_message_parameter(raw, limit);
    INFO("input '" << raw << "' error " << to_string(decoded.error) << ": " << decoded.detail);
    REQUIRE(decoded.ok());
    return *decoded.value;
}

ParseError error_of(std::string_view raw, std::size_t limit = kLimit) {
    MessageParameterDecode decoded = decode_message_parameter(raw, limit);
    INFO("input '" << raw << "'");
    REQUIRE_FALSE(decoded.ok());
    return decoded.error;
}

// 0xFB 0xFF encodes to "+/8=": both characters that differ between the alphabets, and padding.
const std::vector<std::uint8_t> kPlusSlash = {0xFB, 0xFF};

TEST_CASE("RFC 4648 test vectors, standard base64", "[pkcs7][message_encoding]") {
    CHECK(decode_ok("Zg==") == bytes_of("f"));
    CHECK(decode_ok("Zm8=") == bytes_of("fo"));
    CHECK(decode_ok("Zm9v") == bytes_of("foo"));
    CHECK(decode_ok("Zm9vYg==") == bytes_of("foob"));
    CHECK(decode_ok("Zm9vYmE=") == bytes_of("fooba"));
    CHECK(decode_ok("Zm9vYmFy") == bytes_of("foobar"));
}

TEST_CASE("percent escapes in either case, or none", "[pkcs7][message_encoding]") {
    CHECK(decode_ok("+/8=") == kPlusSlash);  // macOS: raw '+' and '/'
    CHECK(decode_ok("%2B%2F8%3D") == kPlusSlash);
    CHECK(decode_ok("%2b%2f8%3d") == kPlusSlash);
    CHECK(decode_ok("%2B/8=") == kPlusSlash);             // mixed
    CHECK(decode_ok("%5A%6d%39%76") == bytes_of("foo"));  // needless escapes of letters
}

TEST_CASE("a literal '+' stays '+', a space is read as '+'", "[pkcs7][message_encoding]") {
    CHECK(decode_ok("+/8=") == kPlusSlash);
    CHECK(decode_ok(" /8=") == kPlusSlash);
    CHECK(decode_ok("%20%2F8%3D") == kPlusSlash);
}

TEST_CASE("base64url and missing padding", "[pkcs7][message_encoding]") {
    CHECK(decode_ok("-_8") == kPlusSlash);
    CHECK(decode_ok("-_8=") == kPlusSlash);
    CHECK(decode_ok("+/8") == kPlusSlash);
    CHECK(decode_ok("Zg") == bytes_of("f"));
    CHECK(decode_ok("Zm8") == bytes_of("fo"));
}

TEST_CASE("line breaks, raw or escaped, are skipped", "[pkcs7][message_encoding]") {
    CHECK(decode_ok("Zm9v\r\nYmFy") == bytes_of("foobar"));
    CHECK(decode_ok("Zm9v\nYmFy\n") == bytes_of("foobar"));
    CHECK(decode_ok("Zm9v%0D%0AYmFy%0a") == bytes_of("foobar"));
    CHECK(decode_ok("Zm9vYg=\r\n=") == bytes_of("foob"));
    CHECK(decode_ok("\tZm9v") == bytes_of("foo"));
}

TEST_CASE("invalid characters and escapes", "[pkcs7][message_encoding]") {
    CHECK(error_of("Zm9v!") == ParseError::bad_base64);
    CHECK(error_of("Zm9v.") == ParseError::bad_base64);
    CHECK(error_of("Zm9v%25") == ParseError::bad_base64);  // an escaped '%': no double decoding
    CHECK(error_of("Zm9v%00") == ParseError::bad_base64);
    CHECK(error_of("Zm9v\xC3\xA9") == ParseError::bad_base64);
    CHECK(error_of("Zm9v%") == ParseError::bad_percent_escape);
    CHECK(error_of("Zm9v%2") == ParseError::bad_percent_escape);
    CHECK(error_of("Zm9v%G0") == ParseError::bad_percent_escape);
    CHECK(error_of("Zm9v%+0") == ParseError::bad_percent_escape);
}

TEST_CASE("misplaced padding and impossible lengths", "[pkcs7][message_encoding]") {
    CHECK(error_of("Zm=9v") == ParseError::bad_base64);  // data after padding
    CHECK(error_of("Zg===") == ParseError::bad_base64);  // too much padding
    CHECK(error_of("Zm8==") == ParseError::bad_base64);
    CHECK(error_of("Zm9v=") == ParseError::bad_base64);  // padding after a complete group
    CHECK(error_of("Z") == ParseError::bad_base64);      // one character carries no byte
    CHECK(error_of("Zm9vY") == ParseError::bad_base64);
    CHECK(error_of("Z===") == ParseError::bad_base64);
    CHECK(error_of("=") == ParseError::bad_base64);
}

TEST_CASE("empty message parameter", "[pkcs7][message_encoding]") {
    CHECK(error_of("") == ParseError::empty);
    CHECK(error_of("\r\n") == ParseError::empty);
    CHECK(error_of("%0D%0A") == ParseError::empty);
}

TEST_CASE("decoded size limit", "[pkcs7][message_encoding]") {
    CHECK(decode_ok("Zm9vYmFy", 6) == bytes_of("foobar"));
    CHECK(error_of("Zm9vYmFy", 5) == ParseError::too_large);
    CHECK(decode_ok("Zm9vYg", 4) == bytes_of("foob"));
    CHECK(error_of("Zm9vYg", 3) == ParseError::too_large);
    const std::string big(4 * (kLimit / 3 + 2), 'A');
    CHECK(error_of(big) == ParseError::too_large);
}

TEST_CASE("upstream encoding is canonical base64, percent-escaped", "[pkcs7][message_encoding]") {
    CHECK(encode_message_parameter(bytes_of("foobar")) == "Zm9vYmFy");
    CHECK(encode_message_parameter(bytes_of("foob")) == "Zm9vYg%3D%3D");
    CHECK(encode_message_parameter(bytes_of("fooba")) == "Zm9vYmE%3D");
    CHECK(encode_message_parameter(kPlusSlash) == "%2B%2F8%3D");
    CHECK(encode_message_parameter({}).empty());
}

TEST_CASE("encode then decode round trip", "[pkcs7][message_encoding]") {
    std::mt19937 random(42);
    for (std::size_t length = 1; length < 300; ++length) {
        std::vector<std::uint8_t> data(length);
        for (auto& byte : data) byte = static_cast<std::uint8_t>(random());
        const std::string encoded = encode_message_parameter(data);
        INFO("length " << length);
        REQUIRE(encoded.find_first_of("+/= ") == std::string::npos);
        REQUIRE(decode_ok(encoded) == data);
    }
}

TEST_CASE("real scepclient GET message: base64url decodes and re-encodes", "[pkcs7][message_encoding]") {
    const std::vector<std::uint8_t> raw = test::read_fixture("pkcsreq-get-message.txt");
    const std::string text(raw.begin(), raw.end());
    REQUIRE(text.find_first_of("-_") != std::string::npos);  // it really is base64url
    const std::vector<std::uint8_t> der = decode_ok(text);
    REQUIRE(der.size() > 1000);
    CHECK(der[0] == 0x30);
    CHECK(decode_ok(encode_message_parameter(der)) == der);
}

TEST_CASE("real POST body survives encode/decode", "[pkcs7][message_encoding]") {
    const std::vector<std::uint8_t> der = test::read_fixture("pkcsreq.der");
    CHECK(decode_ok(encode_message_parameter(der)) == der);
}

}  // namespace
}  // namespace scepproxy::pkcs7
