// Label values of store operations and outcomes (metric labels: bounded, lowercase).
#include "token/store_observer.h"

namespace scepproxy::token {

const char* to_string(StoreOperation operation) {
    switch (operation) {
        case StoreOperation::check_access: return "check_access";
        case StoreOperation::bind_transaction: return "bind_transaction";
        case StoreOperation::consume_transaction: return "consume_transaction";
        case StoreOperation::release_transaction: return "release_transaction";
        case StoreOperation::issue_token: return "issue_token";
        case StoreOperation::find_token: return "find_token";
        case StoreOperation::revoke_token: return "revoke_token";
        case StoreOperation::set_device: return "set_device";
        case StoreOperation::get_device: return "get_device";
        case StoreOperation::purge_expired: return "purge_expired";
    }
    return "unknown_operation";
}

const char* to_string(StoreOutcome outcome) {
    switch (outcome) {
        case StoreOutcome::ok: return "ok";
        case StoreOutcome::not_found: return "not_found";
        case StoreOutcome::conflict: return "conflict";
        case StoreOutcome::invalid: return "invalid";
        case StoreOutcome::unavailable: return "unavailable";
        case StoreOutcome::cache_hit: return "cache_hit";
        case StoreOutcome::allowed_on_error: return "allowed_on_error";
    }
    return "unknown_outcome";
}

std::array<StoreOperation, kStoreOperationCount> all_store_operations() {
    return {StoreOperation::check_access,   StoreOperation::bind_transaction, StoreOperation::consume_transaction,
            StoreOperation::release_transaction, StoreOperation::issue_token, StoreOperation::find_token,
            StoreOperation::revoke_token,   StoreOperation::set_device,       StoreOperation::get_device,
            StoreOperation::purge_expired};
}

std::array<StoreOutcome, kStoreOutcomeCount> all_store_outcomes() {
    return {StoreOutcome::ok,          StoreOutcome::not_found, StoreOutcome::conflict,
            StoreOutcome::invalid,     StoreOutcome::unavailable, StoreOutcome::cache_hit,
            StoreOutcome::allowed_on_error};
}

}  // namespace scepproxy::token
