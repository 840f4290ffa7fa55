// The layer in front of every backend: a per-worker answer cache, the on_error policy, and the observer's measurements.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "token/enrollment_store.h"
#include "token/store_observer.h"

namespace scepproxy::token {

struct StoreCacheOptions {
    // How long an access answer (allow or deny) is reused without asking the backend; 0: never.
    std::chrono::milliseconds cache_ttl{5000};
    // store.on_error: allow. A request the backend couldn't answer is let through when either
    //  - the backend got far enough to vouch for the token (store_unavailable with a profile:
    //    the webhook backend's local check passed and only the MDM didn't answer), or
    //  - this worker's cache holds an earlier `allow` for the same request (even past its
    //    ttl, until the token's own expiry) and nothing was revoked or changed locally since.
    // A token this worker has never seen allowed has no known profile to forward to: it still
    // gets store_unavailable (503). Default false: fail closed.
    bool allow_on_error = false;
    // Per worker. When full, stale entries are dropped first, then everything.
    size_t max_cache_entries = 65536;
    // Monotonic nanoseconds; tests replace it.
    std::function<int64_t()> monotonic_ns;
};

// Wraps `backend` (which must not be null). Control-plane calls are forwarded and observed;
// those that can change an access answer (revoke, set_device) also invalidate every
// session's cache at once (a store-wide epoch the sessions compare on each hit).
// Sessions cache access answers per worker, without locks, and that a token is bound to a
// transaction (a resend or poll of it is answered already_bound for cache_ttl); any local
// consume or release forgets every session's bindings, a revoke everything. Finish is never
// cached. The blocking control-plane calls are forwarded as they are (no cache, no on_error policy).
// `observer` may be null; it must outlive the store.
std::unique_ptr<EnrollmentStore> make_cached_enrollment_store(std::unique_ptr<EnrollmentStore> backend,
                                                              StoreCacheOptions options, StoreObserver* observer);

}  // namespace scepproxy::token
