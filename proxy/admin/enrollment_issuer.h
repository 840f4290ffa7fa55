// EnrollmentIssuer: creates a token for (profile, device) with its challenge — shared by the CLI and the admin API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "conf/config.h"
#include "proxy/challenge/challenge_source.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

enum class IssueStatus {
    ok,
    unknown_profile,        // 400 to an API caller
    bad_device_id,          // 400
    bad_ttl,                // 400
    challenge_unavailable,  // 502/503/504 by challenge_outcome: no token was stored
    store_error,            // 503
};

struct IssuedEnrollment {
    std::string token;     // the GUID: shown once, never stored or logged
    std::string token_id;  // 8 hex digits of its hash, for logs
    std::string scep_url;
    std::optional<std::string> challenge;  // none: the profile has no challenge
    int64_t expires_at = 0;                // Unix seconds
};

struct IssueResult {
    IssueStatus status = IssueStatus::ok;
    std::string message;  // why, when status != ok (no secrets)
    // challenge_unavailable: why the challenge could not be had (busy, timeout, password_cache_full, ...).
    challenge::ChallengeOutcome challenge_outcome = challenge::ChallengeOutcome::ok;
    IssuedEnrollment enrollment;
};

struct IssueRequest {
    std::string profile;
    std::string device_id;
    std::optional<conf::Duration> ttl;  // empty: the profile's token_ttl
    int64_t now = 0;                    // Unix seconds
    challenge::SteadyTime queued_at{};  // when the caller asked: bounds the wait for a fetch slot
};

// Checks the request, obtains the challenge (blocking: a dynamic one is fetched from NDES),
// then stores the token. Nothing is fetched for an invalid request, and nothing is stored
// when the challenge can't be had. The expiry never exceeds the challenge's lifetime.
IssueResult issue_enrollment(const conf::Config& config, token::EnrollmentStore& store,
                             const challenge::ChallengeSources& challenges, const IssueRequest& request);

// Device ids are opaque to us but must be printable and bounded (they reach logs and SQL parameters).
bool is_valid_device_id(const std::string& device_id);

}  // namespace scepproxy::proxy
