// EnrollmentIssuer: creates a token for (profile, device) with its challenge — shared by the CLI and the admin API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "conf/config.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

enum class IssueStatus {
    ok,
    unknown_profile,       // 400/404 to an API caller
    bad_device_id,         // 400
    bad_ttl,               // 400
    challenge_unavailable, // 502/503: the challenge could not be obtained
    store_error,           // 503
};

struct IssuedEnrollment {
    std::string token;               // the GUID: shown once, never stored or logged
    std::string token_id;            // 8 hex digits of its hash, for logs
    std::string scep_url;
    std::optional<std::string> challenge;  // none: the profile has no challenge
    int64_t expires_at = 0;          // Unix seconds
};

struct IssueResult {
    IssueStatus status = IssueStatus::ok;
    std::string message;             // why, when status != ok (no secrets)
    IssuedEnrollment enrollment;
};

// `ttl` empty: the profile's token_ttl. The expiry never exceeds the challenge's lifetime.
IssueResult issue_enrollment(const conf::Config& config, token::EnrollmentStore& store, const std::string& profile,
                             const std::string& device_id, std::optional<conf::Duration> ttl, int64_t now);

// Device ids are opaque to us but must be printable and bounded (they reach logs and SQL parameters).
bool is_valid_device_id(const std::string& device_id);

std::string format_rfc3339(int64_t unix_seconds);

}  // namespace scepproxy::proxy
