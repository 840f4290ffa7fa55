// Tests for the token bucket and the shared rate-limit table, on an injected clock (nanoseconds passed in).
#include <catch2/catch.hpp>

#include "proxy/limits/rate_limiter.h"
#include "proxy/limits/token_bucket.h"

using namespace scepproxy::proxy;

namespace {
constexpr int64_t kSecond = 1'000'000'000;

LimitKey key_of(uint8_t n) {
    LimitKey key;
    key.bytes[0] = 4;
    key.bytes[4] = n;
    return key;
}
}  // namespace

TEST_CASE("a full bucket passes exactly burst requests at once, the next one is refused", "[token_bucket]") {
    const RateLimit limit{60, 5};  // one a second, five at once
    TokenBucket bucket;
    int64_t retry = 0;
    for (int i = 0; i < 5; ++i) CHECK(bucket.take(limit, 100 * kSecond, &retry));
    CHECK_FALSE(bucket.take(limit, 100 * kSecond, &retry));
    CHECK(retry == kSecond);  // one token at one a second
}

TEST_CASE("tokens come back at the configured rate, never beyond the burst", "[token_bucket]") {
    const RateLimit limit{120, 2};  // one every 500 ms
    TokenBucket bucket;
    int64_t retry = 0;
    const int64_t t0 = 10 * kSecond;
    REQUIRE(bucket.take(limit, t0, &retry));
    REQUIRE(bucket.take(limit, t0, &retry));
    CHECK_FALSE(bucket.take(limit, t0 + kSecond / 4, &retry));
    CHECK(retry == kSecond / 4);                          // half a token there, half to go
    CHECK(bucket.take(limit, t0 + kSecond / 2, &retry));  // exactly one back
    CHECK_FALSE(bucket.take(limit, t0 + kSecond / 2, &retry));
    // An hour later the bucket holds its burst, not 7200 tokens.
    const int64_t later = t0 + 3600 * kSecond;
    CHECK(bucket.take(limit, later, &retry));
    CHECK(bucket.take(limit, later, &retry));
    CHECK_FALSE(bucket.take(limit, later, &retry));
}

TEST_CASE("a clock that goes backwards refills nothing", "[token_bucket]") {
    const RateLimit limit{60, 1};
    TokenBucket bucket;
    int64_t retry = 0;
    REQUIRE(bucket.take(limit, 50 * kSecond, &retry));
    CHECK_FALSE(bucket.take(limit, 40 * kSecond, &retry));
}

TEST_CASE("Retry-After is whole seconds, rounded up, at least one", "[rate_limiter]") {
    CHECK(retry_after_seconds(1) == 1);
    CHECK(retry_after_seconds(kSecond) == 1);
    CHECK(retry_after_seconds(kSecond + 1) == 2);
    CHECK(retry_after_seconds(60 * kSecond) == 60);
}

TEST_CASE("the limiter keeps one bucket per key", "[rate_limiter]") {
    RateLimiter limiter(RateLimit{60, 2}, 100);
    for (int i = 0; i < 2; ++i) {
        CHECK(limiter.take(key_of(1), kSecond).allowed);
        CHECK(limiter.take(key_of(2), kSecond).allowed);
    }
    const auto refused = limiter.take(key_of(1), kSecond);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after_ns == kSecond);
    CHECK(limiter.take(key_of(1), 2 * kSecond).allowed);
    CHECK(limiter.size() == 2);
}

TEST_CASE("a disabled limiter passes everything and remembers nothing", "[rate_limiter]") {
    RateLimiter limiter(RateLimit{0, 1}, 100);
    for (int i = 0; i < 1000; ++i) CHECK(limiter.take(key_of(1), kSecond).allowed);
    CHECK(limiter.size() == 0);
}

TEST_CASE("the table holds at most max_keys keys and forgets the least recently seen", "[rate_limiter]") {
    const size_t max_keys = 4;
    RateLimiter limiter(RateLimit{1, 1}, max_keys, 1);  // one shard: the order is the whole table's
    for (uint8_t n = 1; n <= max_keys; ++n) REQUIRE(limiter.take(key_of(n), kSecond).allowed);
    CHECK(limiter.size() == max_keys);  // N keys: all kept, all still refused
    for (uint8_t n = 1; n <= max_keys; ++n) CHECK_FALSE(limiter.take(key_of(n), kSecond).allowed);
    // Seen last: 4, then 3, 2, 1 before it. Seeing 1 again makes 2 the least recently seen.
    CHECK_FALSE(limiter.take(key_of(1), kSecond).allowed);
    // N+1: a new key evicts the least recently seen (2), whose next request starts with a full bucket.
    CHECK(limiter.take(key_of(5), kSecond).allowed);
    CHECK(limiter.size() == max_keys);
    CHECK(limiter.take(key_of(2), kSecond).allowed);        // forgotten: full again (and now evicted 3)
    CHECK_FALSE(limiter.take(key_of(1), kSecond).allowed);  // kept
}
