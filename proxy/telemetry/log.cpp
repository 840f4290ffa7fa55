// Structured logging: formats one line per event and writes it to stdout atomically (one write(2)).
#include "proxy/telemetry/log.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace scepproxy::proxy {
namespace {

LogStyle g_style = LogStyle::text;
LogLevel g_min_level = LogLevel::info;

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
    }
    return "info";
}

// "2026-12-07T03:19:40.123Z". The part up to the seconds changes once a second: each thread
// formats it once per second, not once per line.
void append_timestamp(std::string& out) {
    const auto now = std::chrono::system_clock::now();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const time_t seconds = static_cast<time_t>(ms / 1000);
    thread_local time_t formatted_second = -1;
    thread_local char formatted[24];  // "YYYY-MM-DDTHH:MM:SS."
    thread_local int formatted_length = 0;
    if (seconds != formatted_second) {
        struct tm utc {};
        gmtime_r(&seconds, &utc);
        formatted_length = std::snprintf(formatted, sizeof formatted, "%04d-%02d-%02dT%02d:%02d:%02d.",
                                         utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                                         utc.tm_sec);
        formatted_second = seconds;
    }
    out.append(formatted, static_cast<size_t>(formatted_length));
    const int millis = static_cast<int>(ms % 1000);
    const char tail[4] = {static_cast<char>('0' + millis / 100), static_cast<char>('0' + millis / 10 % 10),
                          static_cast<char>('0' + millis % 10), 'Z'};
    out.append(tail, sizeof tail);
}

// What a value needs in the text style: quotes (empty, spaces, '=', quote, backslash, non-ASCII,
// control characters) and, within them, escapes (quote, backslash, control characters).
struct ValueNeeds {
    bool quotes = false;
    bool escapes = false;
};

bool needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\' || c == 0x7f; }

ValueNeeds value_needs(std::string_view value) {
    ValueNeeds needs;
    needs.quotes = value.empty();
    for (unsigned char c : value) {
        if (c <= ' ' || c == '=' || c >= 0x7f || needs_escape(c)) {
            needs.quotes = true;
            if (needs_escape(c)) {
                needs.escapes = true;
                break;
            }
        }
    }
    return needs;
}

template <class Number>
void append_number(std::string& out, Number value) {
    char buf[24];
    const auto result = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, result.ptr);
}

}  // namespace

void set_log_style(LogStyle style) { g_style = style; }
void set_log_min_level(LogLevel level) { g_min_level = level; }

LogLine::LogLine(LogLevel level, std::string_view event) {
    line_.reserve(256);
    if (level < g_min_level) return;  // line_ stays empty: emit() writes nothing
    if (g_style == LogStyle::json) {
        line_ += "{\"time\":\"";
        append_timestamp(line_);
        line_ += "\",\"level\":\"";
        line_ += level_name(level);
        line_ += "\",\"event\":";
        append_value(event);
    } else {
        append_timestamp(line_);
        line_ += ' ';
        line_ += level_name(level);
        line_ += " event=";
        append_value(event);
    }
}

void LogLine::begin_field(std::string_view key) {
    if (g_style == LogStyle::json) {
        line_ += ",\"";
        line_ += key;
        line_ += "\":";
    } else {
        line_ += ' ';
        line_ += key;
        line_ += '=';
    }
}

// Escapes so that untrusted bytes (paths, peer messages) can't forge fields or lines.
void LogLine::append_value(std::string_view value) {
    const ValueNeeds needs = value_needs(value);
    const bool quote = g_style == LogStyle::json || needs.quotes;
    if (quote) line_ += '"';
    if (!needs.escapes) {
        line_.append(value);
    } else {
        for (unsigned char c : value) {
            if (c == '"' || c == '\\') {
                line_ += '\\';
                line_ += static_cast<char>(c);
            } else if (c < 0x20 || c == 0x7f) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                line_ += buf;
            } else {
                line_ += static_cast<char>(c);
            }
        }
    }
    if (quote) line_ += '"';
}

LogLine& LogLine::field(std::string_view key, std::string_view value) {
    if (line_.empty()) return *this;
    begin_field(key);
    append_value(value);
    return *this;
}

LogLine& LogLine::field(std::string_view key, long long value) {
    if (line_.empty()) return *this;
    begin_field(key);
    append_number(line_, value);
    return *this;
}

LogLine& LogLine::field(std::string_view key, unsigned long long value) {
    if (line_.empty()) return *this;
    begin_field(key);
    append_number(line_, value);
    return *this;
}

LogLine& LogLine::field_ms(std::string_view key, double milliseconds) {
    if (line_.empty()) return *this;
    begin_field(key);
    // Like printf's "%.3f" (exactly rounded), without printf's cost on every request's line.
    char buf[64];
    const auto result = std::to_chars(buf, buf + sizeof buf, milliseconds, std::chars_format::fixed, 3);
    if (result.ec != std::errc())
        line_ += '-';  // over 10^60 ms: not a duration this proxy measures
    else
        line_.append(buf, result.ptr);
    return *this;
}

std::string LogLine::take() {
    if (line_.empty()) return {};
    if (g_style == LogStyle::json) line_ += '}';
    line_ += '\n';
    return std::move(line_);
}

void LogLine::emit() {
    // One write per line keeps lines whole when several workers log at once.
    write_log_text(take());
    line_.clear();
}

void write_log_text(std::string_view text) {
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
        const ssize_t n = ::write(STDOUT_FILENO, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // stdout gone: logging must never take the proxy down
        p += n;
        left -= static_cast<size_t>(n);
    }
}

}  // namespace scepproxy::proxy
