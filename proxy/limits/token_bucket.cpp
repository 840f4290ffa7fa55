// TokenBucket: refill by elapsed time, capped at the burst; no clock of its own.
#include "proxy/limits/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace scepproxy::proxy {
namespace {
constexpr double kNsPerMinute = 60e9;
}

double TokenBucket::tokens_at(const RateLimit& limit, int64_t now_ns) const {
    if (tokens_ < 0) return limit.burst;
    const double elapsed = static_cast<double>(std::max<int64_t>(0, now_ns - updated_ns_));
    return std::min<double>(limit.burst, tokens_ + elapsed * limit.per_minute / kNsPerMinute);
}

bool TokenBucket::take(const RateLimit& limit, int64_t now_ns, int64_t* retry_after_ns) {
    const double tokens = tokens_at(limit, now_ns);
    tokens_ = tokens;
    updated_ns_ = now_ns;
    if (tokens >= 1) {
        tokens_ = tokens - 1;
        return true;
    }
    *retry_after_ns = static_cast<int64_t>(std::ceil((1 - tokens) * kNsPerMinute / limit.per_minute));
    return false;
}

}  // namespace scepproxy::proxy
