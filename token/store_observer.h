// StoreObserver: how token/ reports store operations (for metrics) and noteworthy events (for logs) without depending on either.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace scepproxy::token {

// The `op` label of scepproxy_store_operations_total / scepproxy_store_duration_seconds.
enum class StoreOperation {
    check_access,
    bind_transaction,
    consume_transaction,
    release_transaction,
    issue_token,
    find_token,
    revoke_token,
    set_device,
    get_device,
    purge_expired,
};
inline constexpr size_t kStoreOperationCount = 10;

// The `outcome` label.
enum class StoreOutcome {
    ok,                 // the backend answered (an access check that denies is still ok)
    not_found,          // no such token or device
    conflict,           // duplicate token, transaction mismatch, consumed token
    invalid,            // refused before reaching the backend
    unavailable,        // the backend failed, timed out or was overloaded
    cache_hit,          // answered from the per-worker cache, the backend not asked
    allowed_on_error,   // unavailable, and `on_error: allow` let the request through
};
inline constexpr size_t kStoreOutcomeCount = 7;

const char* to_string(StoreOperation operation);
const char* to_string(StoreOutcome outcome);

// Every label value, in enum order (so a metrics layer resolves all handles at start-up).
std::array<StoreOperation, kStoreOperationCount> all_store_operations();
std::array<StoreOutcome, kStoreOutcomeCount> all_store_outcomes();

// Something an operator should see in the log; the proxy adds the backend's name.
struct StoreEvent {
    enum class Level { info, warn };
    Level level = Level::info;
    const char* name = "";        // the log event, e.g. "store_webhook_denied"
    std::string token_id;         // 8 hex digits, or empty; never the token
    std::string detail;           // never a token or a secret
};

// Called from any thread (workers, backend threads, the control plane): implementations
// must be thread-safe and quick (no I/O beyond one log write).
class StoreObserver {
public:
    virtual ~StoreObserver() = default;
    // `seconds`: how long the backend took; 0 for cache hits and refusals that never reached it.
    virtual void record(StoreOperation operation, StoreOutcome outcome, double seconds) = 0;
    virtual void report(const StoreEvent& event) = 0;
};

}  // namespace scepproxy::token
