// Clock readings used across the proxy: monotonic nanoseconds for durations, Unix seconds for expiries, RFC 3339 text.
#pragma once

#include <time.h>

#include <cstdint>
#include <string>

namespace scepproxy {

inline int64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline int64_t unix_now() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec);
}

// "2026-12-07T23:59:59Z" (UTC), as the admin API and the logs write instants.
std::string format_rfc3339(int64_t unix_seconds);

inline double milliseconds_since(int64_t since_ns) { return static_cast<double>(monotonic_ns() - since_ns) / 1e6; }

}  // namespace scepproxy
