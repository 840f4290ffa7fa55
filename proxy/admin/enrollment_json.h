// JSON views of enrollments and devices — one shape for the CLI's output and the admin API's answers.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "proxy/admin/enrollment_issuer.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

// {"token","scep_url","challenge","expires_at"}; challenge is null for profiles without one.
nlohmann::json issued_enrollment_json(const IssuedEnrollment& enrollment);

// {"token_id","profile","device_id","state","created_at","expires_at","transaction_id","consumed_at"};
// state at `now`, first that applies: revoked, consumed (a certificate was issued on it), expired,
// active. consumed_at is null unless consumed. Shows the token id, never the token.
nlohmann::json token_record_json(const token::TokenRecord& record, int64_t now);

// {"device_id","enrolled","compliant","updated_at"}
nlohmann::json device_record_json(const token::DeviceRecord& record);

// Serialises without throwing: invalid UTF-8 (a device id from a URL) becomes U+FFFD.
std::string json_text(const nlohmann::json& value, int indent = -1);

}  // namespace scepproxy::proxy
