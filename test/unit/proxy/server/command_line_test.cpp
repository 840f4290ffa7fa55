// Tests for the CLI argument parser.
#include <catch2/catch.hpp>

#include <vector>

#include "proxy/server/command_line.h"

using namespace scepproxy::proxy;

namespace {
CommandLine parse(std::vector<const char*> args) {
    args.insert(args.begin(), "scepproxy");
    return parse_command_line(static_cast<int>(args.size()), const_cast<char**>(args.data()));
}
}  // namespace

TEST_CASE("token issue with options in both spellings", "[command_line]") {
    const auto cli = parse({"token", "issue", "-c", "/etc/x.yaml", "--profile", "wifi", "--device=D1", "--ttl", "30m"});
    REQUIRE(cli.error.empty());
    CHECK(cli.words == std::vector<std::string>{"token", "issue"});
    CHECK(cli.config_path == "/etc/x.yaml");
    CHECK(cli.option("--profile") == "wifi");
    CHECK(cli.option("--device") == "D1");
    CHECK(cli.option("--ttl") == "30m");
    CHECK_FALSE(cli.option("--enrolled"));
}

TEST_CASE("defaults and flags", "[command_line]") {
    const auto cli = parse({"check", "--probe"});
    REQUIRE(cli.error.empty());
    CHECK(cli.config_path == "/etc/scepproxy/scepproxy.yaml");
    CHECK(cli.has_flag("--probe"));
    CHECK(parse({"-h"}).has_flag("--help"));
}

TEST_CASE("errors: unknown option, missing value", "[command_line]") {
    CHECK_FALSE(parse({"serve", "--bogus"}).error.empty());
    CHECK_FALSE(parse({"serve", "-c"}).error.empty());
    CHECK_FALSE(parse({"token", "issue", "--profile"}).error.empty());
}
