// Pieces of the EnrollmentStore contract shared by every backend: status names and request checks.
#include "token/enrollment_store.h"

#include <algorithm>

namespace scepproxy::token {

const char* to_string(StoreStatus status) {
    switch (status) {
        case StoreStatus::ok: return "ok";
        case StoreStatus::not_found: return "not_found";
        case StoreStatus::conflict: return "conflict";
        case StoreStatus::unavailable: return "unavailable";
        case StoreStatus::invalid: return "invalid";
    }
    return "unknown_status";
}

const char* to_string(AccessVerdict verdict) {
    switch (verdict) {
        case AccessVerdict::allow: return "allow";
        case AccessVerdict::token_unknown: return "token_unknown";
        case AccessVerdict::token_expired: return "token_expired";
        case AccessVerdict::token_revoked: return "token_revoked";
        case AccessVerdict::device_not_enrolled: return "device_not_enrolled";
        case AccessVerdict::device_not_compliant: return "device_not_compliant";
        case AccessVerdict::store_unavailable: return "store_unavailable";
    }
    return "unknown_verdict";
}

const char* to_string(BindVerdict verdict) {
    switch (verdict) {
        case BindVerdict::bound: return "bound";
        case BindVerdict::already_bound: return "already_bound";
        case BindVerdict::not_bound: return "not_bound";
        case BindVerdict::transaction_mismatch: return "transaction_mismatch";
        case BindVerdict::token_consumed: return "token_consumed";
        case BindVerdict::token_unknown: return "token_unknown";
        case BindVerdict::token_expired: return "token_expired";
        case BindVerdict::token_revoked: return "token_revoked";
        case BindVerdict::transaction_invalid: return "transaction_invalid";
        case BindVerdict::store_unavailable: return "store_unavailable";
    }
    return "unknown_verdict";
}

namespace {

// Why `name` can't be stored as a profile or device id, or nullptr.
const char* stored_name_problem(const std::string& name, const char* empty, const char* too_long, const char* has_nul) {
    if (name.empty()) return empty;
    if (name.size() > kMaxStoredNameBytes) return too_long;
    if (name.find('\0') != std::string::npos) return has_nul;
    return nullptr;
}

}  // namespace

const char* device_id_problem(const std::string& device_id) {
    return stored_name_problem(device_id, "device id is empty", "device id is too long",
                               "device id contains a NUL byte");
}

const char* new_token_problem(const NewToken& token) {
    const bool zero_hash =
        std::all_of(token.hash.bytes.begin(), token.hash.bytes.end(), [](uint8_t b) { return b == 0; });
    if (zero_hash) return "token hash is all zeros";
    if (const char* problem = stored_name_problem(token.profile, "profile is empty", "profile is too long",
                                                  "profile contains a NUL byte")) {
        return problem;
    }
    if (const char* problem = device_id_problem(token.device_id)) return problem;
    if (token.expires_at <= token.created_at) return "token expires before it is created";
    return nullptr;
}

const char* device_record_problem(const DeviceRecord& device) { return device_id_problem(device.device_id); }

const char* transaction_id_problem(const std::string& transaction_id) {
    if (transaction_id.empty()) return "transaction id is empty";
    if (transaction_id.size() > kMaxTransactionIdBytes) return "transaction id is too long";
    if (transaction_id.find('\0') != std::string::npos) return "transaction id contains a NUL byte";
    return nullptr;
}

AccessVerdict access_verdict(const TokenFacts& facts, const AccessQuery& query) {
    if (facts.revoked) return AccessVerdict::token_revoked;
    if (facts.expires_at <= query.now) return AccessVerdict::token_expired;
    if (!query.check_device) return AccessVerdict::allow;
    // No record: the device was never enrolled (issuing a token creates one).
    if (!facts.device || !facts.device->enrolled) return AccessVerdict::device_not_enrolled;
    if (!facts.device->compliant) return AccessVerdict::device_not_compliant;
    return AccessVerdict::allow;
}

BindVerdict bind_verdict(const BindingFacts& facts, const BindQuery& query) {
    if (facts.revoked) return BindVerdict::token_revoked;
    if (facts.expires_at <= query.now) return BindVerdict::token_expired;
    if (facts.consumed) return BindVerdict::token_consumed;
    if (facts.transaction_id.empty()) return query.may_bind ? BindVerdict::bound : BindVerdict::not_bound;
    if (facts.transaction_id == query.transaction_id) return BindVerdict::already_bound;
    return BindVerdict::transaction_mismatch;
}

FinishPlan finish_plan(const BindingFacts& facts, const FinishQuery& query) {
    const bool bound_here = facts.transaction_id == query.transaction_id;
    if (query.end == TransactionEnd::consume) {
        // A certificate was issued: record it even on a token revoked or expired meanwhile.
        if (!bound_here) return {StoreStatus::conflict, false};
        return {StoreStatus::ok, !facts.consumed};
    }
    if (facts.transaction_id.empty()) return {StoreStatus::ok, false};  // nothing bound: nothing to free
    if (!bound_here || facts.consumed) return {StoreStatus::conflict, false};
    return {StoreStatus::ok, true};
}

}  // namespace scepproxy::token
