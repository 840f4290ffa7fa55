// Parsers for the value syntaxes of the config file: durations, listen addresses, http(s) URLs.
#include "conf/config_values.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace scepproxy::conf {
namespace {

struct DurationUnit {
    std::string_view suffix;
    uint64_t milliseconds;
};

// Largest first, so format_duration picks the shortest spelling.
constexpr std::array<DurationUnit, 5> kDurationUnits{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

constexpr uint64_t kMaxDurationMs = 36'500ULL * 86'400'000ULL;  // 100 years

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<uint16_t> parse_port(std::string_view s, uint16_t min) {
    const auto port = parse_integer(s, min, 65535);
    if (!port.value) return std::nullopt;
    return static_cast<uint16_t>(*port.value);
}

bool is_ip_literal(int family, const std::string& host) {
    std::array<unsigned char, 16> buf{};
    return inet_pton(family, host.c_str(), buf.data()) == 1;
}

bool is_host_name(std::string_view host) {
    return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_';
    });
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

Parsed<uint32_t> parse_integer(std::string_view text, uint32_t min, uint32_t max) {
    // More than 10 digits cannot fit in uint32_t; refusing them early avoids overflow.
    uint64_t value = 0;
    if (all_digits(text) && text.size() <= 10) {
        std::from_chars(text.data(), text.data() + text.size(), value);
        if (value >= min && value <= max) return Parsed<uint32_t>::ok(static_cast<uint32_t>(value));
    }
    return Parsed<uint32_t>::fail("expected an integer between " + std::to_string(min) + " and " + std::to_string(max));
}

Parsed<Duration> parse_duration(std::string_view text) {
    const std::string expected = "expected a duration like 500ms, 10s, 5m, 1h or 1d";
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    // 13 digits already exceed the 100-year bound in milliseconds; refusing more avoids overflow.
    if (digits == 0 || digits > 13) return Parsed<Duration>::fail(expected);
    const std::string_view suffix = text.substr(digits);
    const auto unit = std::find_if(kDurationUnits.begin(), kDurationUnits.end(),
                                   [&](const DurationUnit& u) { return u.suffix == suffix; });
    if (unit == kDurationUnits.end()) return Parsed<Duration>::fail(expected);
    uint64_t count = 0;
    std::from_chars(text.data(), text.data() + digits, count);
    if (count > kMaxDurationMs / unit->milliseconds)
        return Parsed<Duration>::fail("duration is too long (at most 36500d)");
    return Parsed<Duration>::ok(Duration(static_cast<int64_t>(count * unit->milliseconds)));
}

std::string format_duration(Duration d) {
    const auto ms = d.count();
    if (ms == 0) return "0s";
    for (const auto& unit : kDurationUnits) {
        const auto per = static_cast<int64_t>(unit.milliseconds);
        if (ms % per == 0) return std::to_string(ms / per) + std::string(unit.suffix);
    }
    return std::to_string(ms) + "ms";  // unreachable: every count is a multiple of 1ms
}

Parsed<ListenAddress> parse_listen_address(std::string_view text) {
    const std::string expected = "expected an address like 0.0.0.0:8080, [::1]:8080 or *:8080";
    ListenAddress out;
    out.text = std::string(text);
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return Parsed<ListenAddress>::fail(expected);
        out.host = std::string(text.substr(1, close - 1));
        if (!is_ip_literal(AF_INET6, out.host))
            return Parsed<ListenAddress>::fail("'" + out.host + "' is not an IPv6 address");
        port_text = text.substr(close + 2);
    } else {
        const size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return Parsed<ListenAddress>::fail(expected);
        const std::string_view host = text.substr(0, colon);
        if (host.find(':') != std::string_view::npos)
            return Parsed<ListenAddress>::fail("IPv6 addresses need brackets, like [::1]:8080");
        out.host = (host.empty() || host == "*") ? "0.0.0.0" : std::string(host);
        if (!is_ip_literal(AF_INET, out.host))
            return Parsed<ListenAddress>::fail("'" + out.host +
                                               "' is not an IP address (listen on an address, like 127.0.0.1:8080)");
        port_text = text.substr(colon + 1);
    }
    const auto port = parse_port(port_text, 0);
    if (!port) return Parsed<ListenAddress>::fail("expected a port between 0 and 65535 after the ':'");
    out.port = *port;
    return Parsed<ListenAddress>::ok(std::move(out));
}

Parsed<UpstreamConfig> parse_http_url(std::string_view text) {
    using Result = Parsed<UpstreamConfig>;
    if (std::any_of(text.begin(), text.end(),
                    [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
        return Result::fail("URL contains spaces or control characters");
    UpstreamConfig out;
    out.url = std::string(text);

    const size_t scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) return Result::fail("expected an http:// or https:// URL");
    out.scheme = lowercase(text.substr(0, scheme_end));
    if (out.scheme != "http" && out.scheme != "https") return Result::fail("expected an http:// or https:// URL");
    const uint16_t default_port = out.scheme == "https" ? 443 : 80;

    const std::string_view rest = text.substr(scheme_end + 3);
    const size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
    const std::string_view authority = rest.substr(0, authority_end);
    if (authority.find('@') != std::string_view::npos)
        return Result::fail("userinfo (user@) is not allowed in the URL; credentials belong in *_file keys");

    std::string_view port_text;
    bool has_port = false;
    bool ipv6 = false;
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return Result::fail("unclosed '[' in the URL's host");
        out.host = std::string(authority.substr(1, close - 1));
        if (!is_ip_literal(AF_INET6, out.host)) return Result::fail("'" + out.host + "' is not an IPv6 address");
        ipv6 = true;
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return Result::fail("unexpected text after the ']' of the URL's host");
            has_port = true;
            port_text = after.substr(1);
        }
    } else {
        const size_t colon = authority.find(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            has_port = true;
            port_text = authority.substr(colon + 1);
        }
        if (out.host.empty()) return Result::fail("the URL has no host");
        if (!is_host_name(out.host)) return Result::fail("'" + out.host + "' is not a valid host name");
    }
    out.port = default_port;
    if (has_port) {
        const auto port = parse_port(port_text, 1);
        if (!port) return Result::fail("expected a port between 1 and 65535 in the URL");
        out.port = *port;
    }

    const std::string_view path = rest.substr(authority_end);
    if (path.find('?') != std::string_view::npos) return Result::fail("a query (?...) is not allowed in the URL");
    if (path.find('#') != std::string_view::npos) return Result::fail("a fragment (#...) is not allowed in the URL");
    out.path = path.empty() ? "/" : std::string(path);

    out.host_header = ipv6 ? "[" + out.host + "]" : out.host;
    out.name = out.host_header + ":" + std::to_string(out.port);
    if (out.port != default_port) out.host_header = out.name;
    return Result::ok(std::move(out));
}

}  // namespace scepproxy::conf
