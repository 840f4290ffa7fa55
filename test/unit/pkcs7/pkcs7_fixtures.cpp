// Test access to the captured SCEP fixtures in data/ and to what fixtures.expect says about them.
#include "test/unit/pkcs7/pkcs7_fixtures.h"

#include <fstream>
#include <iterator>
#include <map>

#include <catch2/catch.hpp>

namespace scepproxy::pkcs7::test {

namespace {

std::string fixture_path(const std::string& name) { return std::string(PKCS7_FIXTURE_DIR) + "/" + name; }

std::map<std::string, std::string> load_expectations() {
    std::map<std::string, std::string> values;
    std::ifstream in(fixture_path("fixtures.expect"));
    std::string line;
    while (std::getline(in, line)) {
        const auto equals = line.find('=');
        if (equals != std::string::npos) values.emplace(line.substr(0, equals), line.substr(equals + 1));
    }
    return values;
}

}  // namespace

std::vector<std::uint8_t> read_fixture(const std::string& name) {
    std::ifstream in(fixture_path(name), std::ios::binary);
    INFO("fixture " << fixture_path(name));
    REQUIRE(in.good());
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string expected(const std::string& key) {
    static const std::map<std::string, std::string> values = load_expectations();
    const auto found = values.find(key);
    INFO("fixtures.expect key " << key);
    REQUIRE(found != values.end());
    return found->second;
}

std::int64_t expected_number(const std::string& key) { return std::stoll(expected(key)); }

}  // namespace scepproxy::pkcs7::test
