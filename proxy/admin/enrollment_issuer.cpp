// EnrollmentIssuer: request checks, the challenge (static or fetched), expiry, and the store insert, in one place.
#include "proxy/admin/enrollment_issuer.h"

#include <algorithm>
#include <ctime>

#include "token/enrollment_token.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kMaxDeviceIdBytes = 256;

IssueResult failure(IssueStatus status, std::string message) {
    IssueResult result;
    result.status = status;
    result.message = std::move(message);
    return result;
}

}  // namespace

bool is_valid_device_id(const std::string& device_id) {
    if (device_id.empty() || device_id.size() > kMaxDeviceIdBytes) return false;
    for (unsigned char c : device_id)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}

IssueResult issue_enrollment(const conf::Config& config, token::EnrollmentStore& store,
                             const challenge::ChallengeSources& challenges, const IssueRequest& request) {
    const conf::ProfileConfig* profile = config.find_profile(request.profile);
    if (!profile) return failure(IssueStatus::unknown_profile, "unknown profile '" + request.profile + "'");
    if (!is_valid_device_id(request.device_id))
        return failure(IssueStatus::bad_device_id, "device id must be 1-256 printable characters");
    conf::Duration lifetime = request.ttl.value_or(profile->token_ttl);
    if (lifetime.count() <= 0) return failure(IssueStatus::bad_ttl, "ttl must be positive");

    IssueResult result;
    if (profile->challenge.type != conf::ChallengeType::none) {
        challenge::ChallengeSource* source = challenges.find(profile->name);
        if (!source) {
            result =
                failure(IssueStatus::challenge_unavailable, "no challenge source for profile '" + profile->name + "'");
            result.challenge_outcome = challenge::ChallengeOutcome::internal_error;
            return result;
        }
        challenge::ChallengeResult obtained = source->obtain(request.queued_at);
        if (obtained.outcome != challenge::ChallengeOutcome::ok) {
            result = failure(IssueStatus::challenge_unavailable,
                             std::string("challenge: ") + challenge::to_string(obtained.outcome) +
                                 (obtained.detail.empty() ? "" : " (" + obtained.detail + ")"));
            result.challenge_outcome = obtained.outcome;
            return result;
        }
        result.enrollment.challenge = std::move(obtained.password);
        // The password was issued after `now`, so it is valid until at least now + its lifetime.
        if (const auto challenge_lifetime = source->lifetime()) lifetime = std::min(lifetime, *challenge_lifetime);
    }

    const auto token = token::EnrollmentToken::generate();
    if (!token) return failure(IssueStatus::store_error, "the random number generator failed");
    token::NewToken record;
    record.hash = token->hash();
    record.profile = profile->name;
    record.device_id = request.device_id;
    record.created_at = request.now;
    record.expires_at = request.now + std::chrono::duration_cast<std::chrono::seconds>(lifetime).count();
    if (record.expires_at <= request.now) record.expires_at = request.now + 1;
    const token::StoreStatus stored = store.issue_token(record);
    if (stored != token::StoreStatus::ok)
        return failure(IssueStatus::store_error, std::string("store: ") + token::to_string(stored));
    result.enrollment.token = token->to_guid();
    result.enrollment.token_id = record.hash.id();
    result.enrollment.scep_url = config.scep.public_url + "/scep/" + result.enrollment.token;
    result.enrollment.expires_at = record.expires_at;
    return result;
}

}  // namespace scepproxy::proxy
