// Tests for LogLine: the timestamp, quoting and escaping of values, numbers and milliseconds as written.
#include <catch2/catch.hpp>

#include <cstdio>
#include <regex>
#include <string>

#include "proxy/telemetry/log.h"

using namespace scepproxy::proxy;

namespace {

// The line after its timestamp and level: "event=... key=value ...".
std::string fields_of(std::string line) {
    REQUIRE(line.size() > 30);
    REQUIRE(line.back() == '\n');
    line.pop_back();
    return line.substr(line.find("event="));
}

}  // namespace

TEST_CASE("a line starts with an RFC 3339 UTC timestamp in milliseconds and the level", "[log]") {
    set_log_style(LogStyle::text);
    const std::string line = LogLine(LogLevel::info, "started").take();
    CHECK(std::regex_match(line, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z info event=started\n)")));
    // The cached seconds part stays right from line to line.
    const std::string again = LogLine(LogLevel::warn, "again").take();
    CHECK(std::regex_match(again, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z warn event=again\n)")));
    CHECK(again.substr(0, 10) == line.substr(0, 10));
}

TEST_CASE("text values are quoted and escaped only when they need it", "[log]") {
    set_log_style(LogStyle::text);
    const std::string line = LogLine(LogLevel::info, "e")
                                 .field("plain", "abc-1.2_x/y")
                                 .field("empty", "")
                                 .field("space", "a b")
                                 .field("equals", "a=b")
                                 .field("quote", "say \"hi\"")
                                 .field("backslash", "a\\b")
                                 .field("newline", "a\nb")
                                 .field("del", std::string_view("a\x7f", 2))
                                 .field("utf8", "caf\xc3\xa9")
                                 .take();
    CHECK(fields_of(line) ==
          "event=e plain=abc-1.2_x/y empty=\"\" space=\"a b\" equals=\"a=b\" quote=\"say \\\"hi\\\"\" "
          "backslash=\"a\\\\b\" newline=\"a\\u000ab\" del=\"a\\u007f\" utf8=\"caf\xc3\xa9\"");
}

TEST_CASE("json values are always quoted and escaped the same way", "[log]") {
    set_log_style(LogStyle::json);
    const std::string line = LogLine(LogLevel::info, "e").field("a", "x y").field("b", "q\"\n").field("n", 42).take();
    set_log_style(LogStyle::text);
    REQUIRE(line.back() == '\n');
    CHECK(line.substr(line.find(",\"level\"")) ==
          ",\"level\":\"info\",\"event\":\"e\",\"a\":\"x y\",\"b\":\"q\\\"\\u000a\",\"n\":42}\n");
}

TEST_CASE("numbers are written in full and milliseconds like printf's %.3f", "[log]") {
    set_log_style(LogStyle::text);
    const std::string line = LogLine(LogLevel::info, "e")
                                 .field("neg", -9223372036854775807LL - 1)
                                 .field("big", 18446744073709551615ULL)
                                 .field("zero", 0)
                                 .take();
    CHECK(fields_of(line) == "event=e neg=-9223372036854775808 big=18446744073709551615 zero=0");

    for (double ms : {0.0, 0.0004, 0.0005, 0.0015, 1.2345, 12.5, 999.9995, 1234567.891, 0.1 + 0.2, 86400000.0}) {
        char expected[64];
        std::snprintf(expected, sizeof expected, "%.3f", ms);
        const std::string written = fields_of(LogLine(LogLevel::info, "e").field_ms("ms", ms).take());
        CHECK(written == std::string("event=e ms=") + expected);
    }
}

TEST_CASE("a line under the minimum level is empty", "[log]") {
    set_log_min_level(LogLevel::warn);
    const std::string line = LogLine(LogLevel::info, "e").field("a", "b").take();
    set_log_min_level(LogLevel::info);
    CHECK(line.empty());
}
