// Parsers for the value syntaxes of the config file (durations, listen addresses, http(s) URLs); the CLI and admin API reuse them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace scepproxy::conf {

// A parsed value, or the reason it was rejected (a short phrase for a config error message).
template <class T>
struct Parsed {
    std::optional<T> value;
    std::string error;  // set when !value

    static Parsed ok(T v) { return Parsed{std::move(v), {}}; }
    static Parsed fail(std::string why) { return Parsed{std::nullopt, std::move(why)}; }
};

// A plain decimal integer in [min, max]: digits only, no sign, no leading "0x".
// The error reads "expected an integer between MIN and MAX".
Parsed<uint32_t> parse_integer(std::string_view text, uint32_t min, uint32_t max);

// "500ms", "10s", "5m", "1h", "1d": a non-negative integer and a unit, nothing else
// (no spaces, signs, fractions or combined units). Rejects values over 100 years.
// Whether 0 is acceptable is the caller's decision.
Parsed<Duration> parse_duration(std::string_view text);

// The shortest exact spelling of a duration in the syntax above, e.g. 3600000ms -> "1h".
std::string format_duration(Duration d);

// "host:port" where host is an IPv4 literal, "[IPv6 literal]", "*" or empty
// ("*:8080" and ":8080" mean every IPv4 address, i.e. host "0.0.0.0"). Port 0..65535.
// Host names are not accepted: a listener binds to an address.
Parsed<ListenAddress> parse_listen_address(std::string_view text);

// An absolute http:// or https:// URL: host (name, IPv4, or [IPv6]), optional port 1..65535,
// optional path ("/" when empty); no userinfo, query or fragment, no spaces or control
// characters. UpstreamConfig doubles as the parsed form of any such URL: every field is filled,
// `url` is the text as given and `host_header` is what to send in Host.
Parsed<UpstreamConfig> parse_http_url(std::string_view text);

}  // namespace scepproxy::conf
