// EnrollmentIssuer: token generation, expiry, challenge lookup and the store insert, in one place.
#include "proxy/enrollment_issuer.h"

#include <ctime>
#include <fstream>
#include <sstream>

#include "token/enrollment_token.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kMaxDeviceIdBytes = 256;

// Static challenge: the file's first line (trailing CR/LF and spaces dropped).
std::optional<std::string> read_static_challenge(const std::string& path, std::string* error) {
    std::ifstream file(path);
    if (!file) {
        *error = "cannot read the challenge password file " + path;
        return std::nullopt;
    }
    std::string line;
    std::getline(file, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (line.empty()) {
        *error = "the challenge password file " + path + " is empty";
        return std::nullopt;
    }
    return line;
}

}  // namespace

bool is_valid_device_id(const std::string& device_id) {
    if (device_id.empty() || device_id.size() > kMaxDeviceIdBytes) return false;
    for (unsigned char c : device_id)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}

std::string format_rfc3339(int64_t unix_seconds) {
    const time_t t = static_cast<time_t>(unix_seconds);
    struct tm utc {};
    gmtime_r(&t, &utc);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buf;
}

IssueResult issue_enrollment(const conf::Config& config, token::EnrollmentStore& store, const std::string& profile_name,
                             const std::string& device_id, std::optional<conf::Duration> ttl, int64_t now) {
    IssueResult result;
    const conf::ProfileConfig* profile = config.find_profile(profile_name);
    if (!profile) {
        result.status = IssueStatus::unknown_profile;
        result.message = "unknown profile '" + profile_name + "'";
        return result;
    }
    if (!is_valid_device_id(device_id)) {
        result.status = IssueStatus::bad_device_id;
        result.message = "device id must be 1-256 printable characters";
        return result;
    }
    conf::Duration lifetime = ttl.value_or(profile->token_ttl);
    if (lifetime.count() <= 0) {
        result.status = IssueStatus::bad_ttl;
        result.message = "ttl must be positive";
        return result;
    }

    switch (profile->challenge.type) {
        case conf::ChallengeType::none:
            break;
        case conf::ChallengeType::static_password: {
            std::string error;
            result.enrollment.challenge = read_static_challenge(profile->challenge.password_file, &error);
            if (!result.enrollment.challenge) {
                result.status = IssueStatus::challenge_unavailable;
                result.message = error;
                return result;
            }
            break;
        }
        case conf::ChallengeType::dynamic:
            // Needs the mscep_admin challenge module; then the token's expiry is capped at the challenge's lifetime.
            result.status = IssueStatus::challenge_unavailable;
            result.message = "dynamic challenges (mscep_admin) are not supported by this build yet";
            return result;
    }

    const auto token = token::EnrollmentToken::generate();
    if (!token) {
        result.status = IssueStatus::store_error;
        result.message = "the random number generator failed";
        return result;
    }
    token::NewToken record;
    record.hash = token->hash();
    record.profile = profile->name;
    record.device_id = device_id;
    record.created_at = now;
    record.expires_at = now + std::chrono::duration_cast<std::chrono::seconds>(lifetime).count();
    if (record.expires_at <= now) record.expires_at = now + 1;
    const token::StoreStatus stored = store.issue_token(record);
    if (stored != token::StoreStatus::ok) {
        result.status = IssueStatus::store_error;
        result.message = std::string("store: ") + token::to_string(stored);
        return result;
    }
    result.enrollment.token = token->to_guid();
    result.enrollment.token_id = record.hash.id();
    result.enrollment.scep_url = config.scep.public_url + "/scep/" + result.enrollment.token;
    result.enrollment.expires_at = record.expires_at;
    return result;
}

}  // namespace scepproxy::proxy
