// Test access to the captured SCEP fixtures in data/ and to what fixtures.expect says about them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace scepproxy::pkcs7::test {

// The bytes of data/NAME; fails the current test if the file cannot be read.
std::vector<std::uint8_t> read_fixture(const std::string& name);

// A value from data/fixtures.expect (written by make_fixtures.sh from scepclient's log and
// openssl, independently of the code under test); fails the current test if the key is missing.
std::string expected(const std::string& key);
std::int64_t expected_number(const std::string& key);

}  // namespace scepproxy::pkcs7::test
