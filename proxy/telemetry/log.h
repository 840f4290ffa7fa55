// Structured logging: one logfmt (or JSON) line per event, written to stdout with one write(2).
#pragma once

#include <string>
#include <string_view>

namespace scepproxy::proxy {

enum class LogLevel { debug, info, warn, error };
enum class LogStyle { text, json };

// A log line under construction: `LogLine(LogLevel::info, "listening").field("listener", "scep").emit();`
// Values are escaped (quotes, control characters); nothing here allocates per field beyond the line buffer.
class LogLine {
public:
    LogLine(LogLevel level, std::string_view event);
    LogLine& field(std::string_view key, std::string_view value);
    LogLine& field(std::string_view key, long long value);
    LogLine& field(std::string_view key, unsigned long long value);
    LogLine& field(std::string_view key, int value) { return field(key, static_cast<long long>(value)); }
    LogLine& field(std::string_view key, unsigned value) { return field(key, static_cast<unsigned long long>(value)); }
    LogLine& field(std::string_view key, long value) { return field(key, static_cast<long long>(value)); }
    LogLine& field(std::string_view key, unsigned long value) {
        return field(key, static_cast<unsigned long long>(value));
    }
    LogLine& field(std::string_view key, const char* value) { return field(key, std::string_view(value)); }
    LogLine& field(std::string_view key, const std::string& value) { return field(key, std::string_view(value)); }
    LogLine& field_ms(std::string_view key, double milliseconds);
    void emit();
    // The finished line with its newline, for a caller that writes it later; empty when filtered out.
    std::string take();

private:
    void begin_field(std::string_view key);
    void append_value(std::string_view value);
    std::string line_;
};

// Writes whole lines to stdout with one write(2) (retrying partial writes); never fails loudly.
void write_log_text(std::string_view text);

// Process-wide settings, set once at start-up (before worker threads start).
void set_log_style(LogStyle style);
void set_log_min_level(LogLevel level);

}  // namespace scepproxy::proxy
