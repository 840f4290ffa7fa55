// Tests for the config value syntaxes: integers, durations, listen addresses, http(s) URLs.
#include <catch2/catch.hpp>

#include "conf/config_values.h"

using namespace scepproxy::conf;
using namespace std::chrono_literals;

TEST_CASE("parse_integer accepts plain decimal integers within bounds", "[conf][values]") {
    CHECK(parse_integer("0", 0, 10).value == 0u);
    CHECK(parse_integer("10", 0, 10).value == 10u);
    CHECK(parse_integer("4294967295", 0, 4294967295u).value == 4294967295u);
}

TEST_CASE("parse_integer rejects out-of-range and non-decimal text", "[conf][values]") {
    for (const char* text :
         {"", "11", "-1", "+5", "0x10", "1.5", "1e3", " 5", "5 ", "99999999999999999999", "4294967296"}) {
        INFO(text);
        const auto parsed = parse_integer(text, 0, 10);
        CHECK_FALSE(parsed.value);
        CHECK(parsed.error == "expected an integer between 0 and 10");
    }
}

TEST_CASE("parse_duration reads each unit", "[conf][values]") {
    CHECK(parse_duration("500ms").value == 500ms);
    CHECK(parse_duration("10s").value == 10s);
    CHECK(parse_duration("5m").value == 5min);
    CHECK(parse_duration("1h").value == 1h);
    CHECK(parse_duration("1d").value == 24h);
    CHECK(parse_duration("0s").value == 0ms);
    CHECK(parse_duration("36500d").value == 36500 * 24h);
}

TEST_CASE("parse_duration rejects malformed durations", "[conf][values]") {
    for (const char* text :
         {"", "10", "s", "10 s", " 10s", "10s ", "-5s", "+5s", "1.5h", "1h30m", "10S", "10sec", "5w", "ms", "0x10s"}) {
        INFO(text);
        const auto parsed = parse_duration(text);
        CHECK_FALSE(parsed.value);
        CHECK(parsed.error == "expected a duration like 500ms, 10s, 5m, 1h or 1d");
    }
}

TEST_CASE("parse_duration rejects durations too long to represent", "[conf][values]") {
    CHECK_FALSE(parse_duration("36501d").value);
    CHECK(parse_duration("36501d").error == "duration is too long (at most 36500d)");
    CHECK_FALSE(parse_duration("99999999999999999999999ms").value);
}

TEST_CASE("format_duration picks the largest exact unit and round-trips", "[conf][values]") {
    CHECK(format_duration(0ms) == "0s");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(90s) == "90s");
    CHECK(format_duration(60min) == "1h");
    CHECK(format_duration(48h) == "2d");
    for (const Duration d : {Duration(1), Duration(1000), Duration(61000), Duration(3600000), Duration(86400000 * 3LL)})
        CHECK(parse_duration(format_duration(d)).value == d);
}

TEST_CASE("parse_listen_address reads IPv4, bracketed IPv6 and wildcard forms", "[conf][values]") {
    const auto v4 = parse_listen_address("127.0.0.1:9100").value;
    REQUIRE(v4);
    CHECK(v4->host == "127.0.0.1");
    CHECK(v4->port == 9100);
    CHECK(v4->text == "127.0.0.1:9100");

    const auto v6 = parse_listen_address("[::1]:8443").value;
    REQUIRE(v6);
    CHECK(v6->host == "::1");
    CHECK(v6->port == 8443);

    for (const char* all : {"*:8080", ":8080", "0.0.0.0:8080"}) {
        INFO(all);
        const auto any = parse_listen_address(all).value;
        REQUIRE(any);
        CHECK(any->host == "0.0.0.0");
        CHECK(any->port == 8080);
        CHECK(any->text == all);
    }
    CHECK(parse_listen_address("[::]:0").value->port == 0);
}

TEST_CASE("parse_listen_address rejects malformed addresses", "[conf][values]") {
    for (const char* text :
         {"", "8080", "localhost:8080", "example.com:80", "1.2.3:80", "256.0.0.1:80", "::1:8080", "[::1]", "[::1]8080",
          "[::1:8080", "[nope]:80", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:http", " 1.2.3.4:80"}) {
        INFO(text);
        const auto parsed = parse_listen_address(text);
        CHECK_FALSE(parsed.value);
        CHECK_FALSE(parsed.error.empty());
    }
    CHECK(parse_listen_address("::1:8080").error == "IPv6 addresses need brackets, like [::1]:8080");
    CHECK(parse_listen_address("1.2.3.4:65536").error == "expected a port between 0 and 65535 after the ':'");
}

TEST_CASE("parse_http_url splits an URL into scheme, host, port, path and Host header", "[conf][values]") {
    const auto plain = parse_http_url("http://ndes.corp.example.com/certsrv/mscep/mscep.dll").value;
    REQUIRE(plain);
    CHECK(plain->url == "http://ndes.corp.example.com/certsrv/mscep/mscep.dll");
    CHECK(plain->scheme == "http");
    CHECK(plain->host == "ndes.corp.example.com");
    CHECK(plain->port == 80);
    CHECK(plain->path == "/certsrv/mscep/mscep.dll");
    CHECK(plain->host_header == "ndes.corp.example.com");

    const auto tls_port = parse_http_url("HTTPS://ndes:8443").value;
    REQUIRE(tls_port);
    CHECK(tls_port->scheme == "https");
    CHECK(tls_port->port == 8443);
    CHECK(tls_port->path == "/");
    CHECK(tls_port->host_header == "ndes:8443");

    const auto default_port_written = parse_http_url("https://ndes:443/x").value;
    REQUIRE(default_port_written);
    CHECK(default_port_written->host_header == "ndes");

    const auto v6 = parse_http_url("http://[2001:db8::1]:8080/scep").value;
    REQUIRE(v6);
    CHECK(v6->host == "2001:db8::1");
    CHECK(v6->port == 8080);
    CHECK(v6->host_header == "[2001:db8::1]:8080");

    const auto v4 = parse_http_url("http://10.0.0.5/").value;
    REQUIRE(v4);
    CHECK(v4->host == "10.0.0.5");
}

TEST_CASE("parse_http_url rejects what an upstream URL must not contain", "[conf][values]") {
    struct Case {
        const char* url;
        const char* error;
    };
    const Case cases[] = {
        {"ftp://ndes/x", "expected an http:// or https:// URL"},
        {"ndes/x", "expected an http:// or https:// URL"},
        {"", "expected an http:// or https:// URL"},
        {"http://user:pw@ndes/x", "userinfo (user@) is not allowed in the URL; credentials belong in *_file keys"},
        {"http://ndes/x?operation=GetCACaps", "a query (?...) is not allowed in the URL"},
        {"http://ndes?x", "a query (?...) is not allowed in the URL"},
        {"http://ndes/x#frag", "a fragment (#...) is not allowed in the URL"},
        {"http:///x", "the URL has no host"},
        {"http://:8080/x", "the URL has no host"},
        {"http://ndes:0/", "expected a port between 1 and 65535 in the URL"},
        {"http://ndes:65536/", "expected a port between 1 and 65535 in the URL"},
        {"http://ndes:http/", "expected a port between 1 and 65535 in the URL"},
        {"http://ndes:/", "expected a port between 1 and 65535 in the URL"},
        {"http://nd es/", "URL contains spaces or control characters"},
        {"http://ndes/a\tb", "URL contains spaces or control characters"},
        {"http://[::1/x", "unclosed '[' in the URL's host"},
        {"http://[nope]/x", "'nope' is not an IPv6 address"},
        {"http://[::1]x/", "unexpected text after the ']' of the URL's host"},
        {"http://nd%65s/", "'nd%65s' is not a valid host name"},
        {"http://::1/", "the URL has no host"},
    };
    for (const auto& c : cases) {
        INFO(c.url);
        const auto parsed = parse_http_url(c.url);
        CHECK_FALSE(parsed.value);
        CHECK(parsed.error == c.error);
    }
}
