// TokenBucket: one key's request allowance (burst, refilled at a steady rate); the caller passes the time in.
#pragma once

#include <cstdint>

namespace scepproxy::proxy {

struct RateLimit {
    uint32_t per_minute = 0;  // 0: no limit
    uint32_t burst = 1;       // requests allowed at once from a full bucket
    bool enabled() const { return per_minute > 0; }
};

class TokenBucket {
public:
    // Takes one request's token at `now_ns` (a monotonic clock). When none is left, returns false and
    // sets *retry_after_ns to the time until the next token.
    bool take(const RateLimit& limit, int64_t now_ns, int64_t* retry_after_ns);

private:
    double tokens_at(const RateLimit& limit, int64_t now_ns) const;

    double tokens_ = -1;  // < 0: never used, i.e. full
    int64_t updated_ns_ = 0;
};

}  // namespace scepproxy::proxy
