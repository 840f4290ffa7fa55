// JSON views of enrollments and devices: field names and formats of the documented contract.
#include "proxy/admin/enrollment_json.h"

#include "base/clock.h"

namespace scepproxy::proxy {

namespace {

// Revoked first: an operator's decision stands above what happened to the token before.
const char* token_state(const token::TokenRecord& record, int64_t now) {
    if (record.revoked) return "revoked";
    if (record.consumed) return "consumed";
    if (record.expires_at <= now) return "expired";
    return "active";
}

}  // namespace

nlohmann::json issued_enrollment_json(const IssuedEnrollment& enrollment) {
    return {{"token", enrollment.token},
            {"scep_url", enrollment.scep_url},
            {"challenge", enrollment.challenge ? nlohmann::json(*enrollment.challenge) : nlohmann::json(nullptr)},
            {"expires_at", format_rfc3339(enrollment.expires_at)}};
}

nlohmann::json token_record_json(const token::TokenRecord& record, int64_t now) {
    return {{"token_id", record.hash.id()},
            {"profile", record.profile},
            {"device_id", record.device_id},
            {"state", token_state(record, now)},
            {"created_at", format_rfc3339(record.created_at)},
            {"expires_at", format_rfc3339(record.expires_at)},
            {"transaction_id",
             record.transaction_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(record.transaction_id)},
            {"consumed_at",
             record.consumed ? nlohmann::json(format_rfc3339(record.consumed_at)) : nlohmann::json(nullptr)}};
}

nlohmann::json device_record_json(const token::DeviceRecord& record) {
    return {{"device_id", record.device_id},
            {"enrolled", record.enrolled},
            {"compliant", record.compliant},
            {"updated_at", format_rfc3339(record.updated_at)}};
}

std::string json_text(const nlohmann::json& value, int indent) {
    return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace scepproxy::proxy
