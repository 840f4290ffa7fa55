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

namespace {

// Why `name` can't be stored as a profile or device id, or nullptr.
const char* stored_name_problem(const std::string& name, const char* empty, const char* too_long,
                                const char* has_nul) {
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
    const bool zero_hash = std::all_of(token.hash.bytes.begin(), token.hash.bytes.end(),
                                       [](uint8_t b) { return b == 0; });
    if (zero_hash) return "token hash is all zeros";
    if (const char* problem = stored_name_problem(token.profile, "profile is empty", "profile is too long",
                                                  "profile contains a NUL byte")) {
        return problem;
    }
    if (const char* problem = device_id_problem(token.device_id)) return problem;
    if (token.expires_at <= token.created_at) return "token expires before it is created";
    return nullptr;
}

const char* device_record_problem(const DeviceRecord& device) {
    return device_id_problem(device.device_id);
}

}  // namespace scepproxy::token
