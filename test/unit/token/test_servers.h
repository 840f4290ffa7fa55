// Where ctest's fixtures started the servers the store tests share (PostgreSQL, the fake MDM).
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

namespace scepproxy::token::test {

// The directory ctest's fixtures start the test servers in: postgres/conninfo, fake-mdm/url.
inline std::string test_servers_file(const std::string& name) {
    const char* dir = std::getenv("SCEPPROXY_TEST_SERVERS_DIR");
    INFO(
        "SCEPPROXY_TEST_SERVERS_DIR names where ctest's fixtures started the test servers "
        "(the token_test_servers fixture does; run these tests through ctest)");
    REQUIRE(dir != nullptr);
    const std::string path = std::string(dir) + "/" + name;
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    INFO("nothing in " << path);
    REQUIRE_FALSE(line.empty());
    return line;
}

}  // namespace scepproxy::token::test
