// StoreObserver: how token/ reports store operations (for metrics) and noteworthy events (for logs) without depending on either.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/label_enum.h"

namespace scepproxy::token {

// The `op` label of scepproxy_store_operations_total / scepproxy_store_duration_seconds.
// clang-format off: one label a line
#define SCEPPROXY_STORE_OPERATIONS(X) \
    X(check_access)                   \
    X(bind_transaction)               \
    X(consume_transaction)            \
    X(release_transaction)            \
    X(issue_token)                    \
    X(find_token)                     \
    X(revoke_token)                   \
    X(set_device)                     \
    X(get_device)                     \
    X(purge_expired)
// clang-format on
SCEPPROXY_LABEL_ENUM(StoreOperation, SCEPPROXY_STORE_OPERATIONS)

// The `outcome` label.
// clang-format off: one label a line
#define SCEPPROXY_STORE_OUTCOMES(X) \
    X(ok)                           \
    X(not_found)                    \
    X(conflict)                     \
    X(invalid)                      \
    X(unavailable)                  \
    X(cache_hit)                    \
    X(allowed_on_error)
// clang-format on
SCEPPROXY_LABEL_ENUM(StoreOutcome, SCEPPROXY_STORE_OUTCOMES)

// Every label value, in enum order (so a metrics layer resolves all handles at start-up).
constexpr std::array<StoreOperation, kStoreOperationCount> all_store_operations() {
    return label_enum_values<StoreOperation, kStoreOperationCount>();
}
constexpr std::array<StoreOutcome, kStoreOutcomeCount> all_store_outcomes() {
    return label_enum_values<StoreOutcome, kStoreOutcomeCount>();
}

// Something an operator should see in the log; the proxy adds the backend's name.
struct StoreEvent {
    enum class Level { info, warn };
    Level level = Level::info;
    const char* name = "";  // the log event, e.g. "store_webhook_denied"
    std::string token_id;   // 8 hex digits, or empty; never the token
    std::string detail;     // never a token or a secret
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
