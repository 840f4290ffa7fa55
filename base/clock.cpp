// format_rfc3339: Unix seconds as RFC 3339 UTC text.
#include "base/clock.h"

#include <ctime>

namespace scepproxy {

std::string format_rfc3339(int64_t unix_seconds) {
    const time_t t = static_cast<time_t>(unix_seconds);
    struct tm utc {};
    gmtime_r(&t, &utc);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buf;
}

}  // namespace scepproxy
