// Tests for check_der_input: the outer-length check that tells truncated from trailing from not-DER.
#include "pkcs7/der_input.h"

#include <vector>

#include <catch2/catch.hpp>

namespace scepproxy::pkcs7 {
namespace {

ParseError error_of(const std::vector<std::uint8_t>& der, std::size_t max_bytes = 1024) {
    const DerInputCheck check = check_der_input(der, max_bytes);
    REQUIRE_FALSE(check.ok);
    return check.error;
}

bool accepted(const std::vector<std::uint8_t>& der) { return check_der_input(der, 1024).ok; }

TEST_CASE("outer SEQUENCE length forms", "[pkcs7][der_input]") {
    CHECK(accepted({0x30, 0x00}));
    CHECK(accepted({0x30, 0x02, 0x05, 0x00}));
    CHECK(accepted({0x30, 0x81, 0x02, 0x05, 0x00}));
    CHECK(accepted({0x30, 0x82, 0x00, 0x02, 0x05, 0x00}));
    CHECK(accepted({0x30, 0x80, 0x05, 0x00, 0x00, 0x00}));  // BER indefinite: left to the parser
}

TEST_CASE("outer SEQUENCE errors", "[pkcs7][der_input]") {
    CHECK(error_of({}) == ParseError::empty);
    CHECK(error_of({0x30, 0x00}, 1) == ParseError::too_large);
    CHECK(error_of({0x31, 0x00}) == ParseError::not_der);
    CHECK(error_of({0x30}) == ParseError::truncated);
    CHECK(error_of({0x30, 0x03, 0x05, 0x00}) == ParseError::truncated);
    CHECK(error_of({0x30, 0x82, 0x01}) == ParseError::truncated);
    CHECK(error_of({0x30, 0x01, 0x05, 0x00}) == ParseError::trailing_data);
    CHECK(error_of({0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00}) == ParseError::not_der);
    CHECK(error_of({0x30, 0x84, 0xff, 0xff, 0xff, 0xff}) == ParseError::truncated);
}

}  // namespace
}  // namespace scepproxy::pkcs7
