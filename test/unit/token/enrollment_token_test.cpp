// Tests for enrollment tokens: strict GUID parsing, generation, printing and SHA-256 hashing.
#include <catch2/catch.hpp>

#include <cctype>
#include <set>
#include <string>

#include "token/enrollment_token.h"

namespace scepproxy::token {
namespace {

constexpr const char* kSampleGuid = "00112233-4455-6677-8899-aabbccddeeff";

}  // namespace

TEST_CASE("token: parse reads the 16 bytes in textual order", "[token]") {
    const auto token = EnrollmentToken::parse(kSampleGuid);
    REQUIRE(token);
    const std::array<uint8_t, 16> expected{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                           0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    CHECK(token->bytes() == expected);
    CHECK(token->to_guid() == kSampleGuid);
}

TEST_CASE("token: parse is case-insensitive and to_guid prints lowercase", "[token]") {
    for (const char* guid : {"00112233-4455-6677-8899-AABBCCDDEEFF", "00112233-4455-6677-8899-aAbBcCdDeEfF"}) {
        INFO(guid);
        const auto token = EnrollmentToken::parse(guid);
        REQUIRE(token);
        CHECK(token->to_guid() == kSampleGuid);
    }
}

TEST_CASE("token: parse rejects anything but the exact 8-4-4-4-12 hex form", "[token]") {
    const std::string bad[] = {
        "",
        "00112233-4455-6677-8899-aabbccddeef",                     // 35 characters
        "00112233-4455-6677-8899-aabbccddeeff0",                   // 37 characters
        "00112233445566778899aabbccddeeff",                        // no dashes
        "00112233-4455-6677-8899aabbccddeeff-",                    // dash moved to the end
        "0011223-34455-6677-8899-aabbccddeeff",                    // dash one to the left
        "00112233-44556-677-8899-aabbccddeeff",                    // dash one to the right
        "00112233_4455_6677_8899_aabbccddeeff",                    // wrong separator
        "00112233-4455-6677-8899-aabbccddeefg",                    // g is not hex
        "00112233-4455-6677-8899-aabbccddee:f",                    // ':' sits just after '9'
        "00112233-4455-6677-8899-aabbccddee@f",                    // '@' sits just before 'A'
        "00112233-4455-6677-8899-aabbccddee`f",                    // '`' sits just before 'a'
        "00112233-4455-6677-8899-aabbccddee f",                    // space inside
        " 00112233-4455-6677-8899-aabbccddeef",                    // leading space (length kept at 36)
        "00112233-4455-6677-8899-aabbccddeef ",                    // trailing space
        "00112233-4455-6677-8899-aabbccddeef\n",                   // trailing newline
        "{0112233-4455-6677-8899-aabbccddeef}",                    // braces (length kept at 36)
        "{00112233-4455-6677-8899-aabbccddeeff}",                  // braces around a valid GUID
        "+0112233-4455-6677-8899-aabbccddeeff",                    // sign
        "0x112233-4455-6677-8899-aabbccddeeff",                    // 0x prefix
        "00112233-4455-6677-8899-aabbccddee\xc3\xa9",              // non-ASCII bytes
        std::string("00112233-4455-6677-8899-aabbccdd\0eff", 36),  // NUL inside
        "00112233-4455-6677-8899--abbccddeeff",                    // doubled dash
        "------------------------------------",                    // only dashes
    };
    for (const std::string& guid : bad) {
        INFO("'" << guid << "' (" << guid.size() << " bytes)");
        CHECK_FALSE(EnrollmentToken::parse(guid));
    }
}

TEST_CASE("token: generated tokens differ and round-trip through their GUID", "[token]") {
    std::set<std::string> seen;
    for (int i = 0; i < 64; ++i) {
        const auto token = EnrollmentToken::generate();
        REQUIRE(token);
        const std::string guid = token->to_guid();
        REQUIRE(guid.size() == 36);
        for (char c : guid) CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'));
        const auto parsed = EnrollmentToken::parse(guid);
        REQUIRE(parsed);
        CHECK(parsed->bytes() == token->bytes());
        CHECK(parsed->hash() == token->hash());
        seen.insert(guid);
    }
    CHECK(seen.size() == 64);
}

TEST_CASE("token: hash is SHA-256 of the 16 raw bytes", "[token]") {
    // Expected values computed outside this code: printf '<bytes>' | sha256sum.
    SECTION("all zero bytes") {
        const auto token = EnrollmentToken::parse("00000000-0000-0000-0000-000000000000");
        REQUIRE(token);
        CHECK(token->hash().hex() == "374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb");
    }
    SECTION("00 11 22 ... ff") {
        const auto token = EnrollmentToken::parse(kSampleGuid);
        REQUIRE(token);
        CHECK(token->hash().hex() == "a8faed6abbf35c12a4b26e40f6feb19d736d90045c83b9f9a31f638d323e6811");
        CHECK(token->hash().id() == "a8faed6a");
    }
    SECTION("the upper- and lowercase forms of a token hash the same") {
        const auto token = EnrollmentToken::parse(kSampleGuid);
        REQUIRE(token);
        const auto upper = EnrollmentToken::parse("00112233-4455-6677-8899-AABBCCDDEEFF");
        REQUIRE(upper);
        CHECK(upper->hash() == token->hash());
    }
}

TEST_CASE("token hash: hex, id and from_hex agree", "[token]") {
    const auto token = EnrollmentToken::generate();
    REQUIRE(token);
    const TokenHash hash = token->hash();
    const std::string hex = hash.hex();
    REQUIRE(hex.size() == 64);
    for (char c : hex) CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    CHECK(hash.id() == hex.substr(0, 8));

    const auto parsed = TokenHash::from_hex(hex);
    REQUIRE(parsed);
    CHECK(*parsed == hash);

    std::string upper = hex;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto parsed_upper = TokenHash::from_hex(upper);
    REQUIRE(parsed_upper);
    CHECK(*parsed_upper == hash);
}

TEST_CASE("token hash: from_hex rejects wrong lengths and non-hex", "[token]") {
    const std::string good(64, 'a');
    CHECK(TokenHash::from_hex(good));
    CHECK_FALSE(TokenHash::from_hex(""));
    CHECK_FALSE(TokenHash::from_hex(good.substr(0, 63)));
    CHECK_FALSE(TokenHash::from_hex(good + "a"));
    CHECK_FALSE(TokenHash::from_hex(std::string(62, 'a') + "ag"));
    CHECK_FALSE(TokenHash::from_hex(std::string(62, 'a') + " a"));
    CHECK_FALSE(TokenHash::from_hex(std::string(63, 'a') + '\0'));
    CHECK_FALSE(TokenHash::from_hex(kSampleGuid));
}

}  // namespace scepproxy::token
