// RateLimiter: sharded LRU tables of token buckets.
#include "proxy/limits/rate_limiter.h"

#include <algorithm>

namespace scepproxy::proxy {

RateLimiter::RateLimiter(RateLimit limit, size_t max_keys, size_t shards)
    : limit_(limit),
      shard_count_(std::max<size_t>(1, shards)),
      keys_per_shard_(std::max<size_t>(1, (max_keys + shard_count_ - 1) / shard_count_)),
      shards_(std::make_unique<Shard[]>(shard_count_)) {}

RateLimiter::Decision RateLimiter::take(const LimitKey& key, int64_t now_ns) {
    Decision decision;
    if (!limit_.enabled()) return decision;
    Shard& shard = shards_[LimitKeyHash{}(key) % shard_count_];
    std::lock_guard lock(shard.mutex);
    auto found = shard.index.find(key);
    if (found != shard.index.end()) {
        shard.recent.splice(shard.recent.begin(), shard.recent, found->second);
    } else {
        if (shard.index.size() >= keys_per_shard_) {
            shard.index.erase(shard.recent.back().first);
            shard.recent.pop_back();
        }
        shard.recent.emplace_front(key, TokenBucket{});
        shard.index.emplace(key, shard.recent.begin());
    }
    decision.allowed = shard.recent.front().second.take(limit_, now_ns, &decision.retry_after_ns);
    return decision;
}

size_t RateLimiter::size() const {
    size_t total = 0;
    for (size_t i = 0; i < shard_count_; ++i) {
        std::lock_guard lock(shards_[i].mutex);
        total += shards_[i].index.size();
    }
    return total;
}

int64_t retry_after_seconds(int64_t retry_after_ns) {
    constexpr int64_t kNsPerSecond = 1'000'000'000;
    return std::max<int64_t>(1, (retry_after_ns + kNsPerSecond - 1) / kNsPerSecond);
}

}  // namespace scepproxy::proxy
