// RateLimiter: a token bucket per key (client address group or token), in a bounded table shared by all workers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "proxy/limits/limit_key.h"
#include "proxy/limits/token_bucket.h"

namespace scepproxy::proxy {

// A client's connections land on different workers (SO_REUSEPORT hashes the port too), so the buckets
// are shared: the table is split in shards, each behind its own mutex held for one hash lookup.
// At most `max_keys` keys are kept (split evenly over the shards); a shard that is full forgets its
// least recently seen key, whose next request then starts from a full bucket.
class RateLimiter {
public:
    RateLimiter(RateLimit limit, size_t max_keys, size_t shards = kDefaultShards);
    RateLimiter(const RateLimiter&) = delete;
    RateLimiter& operator=(const RateLimiter&) = delete;

    struct Decision {
        bool allowed = true;
        int64_t retry_after_ns = 0;  // when refused: until the next request would pass
    };
    // Thread-safe. `now_ns`: monotonic time (base/clock.h; tests pass their own).
    Decision take(const LimitKey& key, int64_t now_ns);

    bool enabled() const { return limit_.enabled(); }
    size_t size() const;  // keys kept now

    static constexpr size_t kDefaultShards = 16;

private:
    using Entry = std::pair<LimitKey, TokenBucket>;
    struct Shard {
        std::mutex mutex;
        std::list<Entry> recent;  // most recently seen first
        std::unordered_map<LimitKey, std::list<Entry>::iterator, LimitKeyHash> index;
    };

    const RateLimit limit_;
    const size_t shard_count_;
    const size_t keys_per_shard_;
    std::unique_ptr<Shard[]> shards_;
};

// Whole seconds for a Retry-After header: rounded up, at least 1.
int64_t retry_after_seconds(int64_t retry_after_ns);

}  // namespace scepproxy::proxy
