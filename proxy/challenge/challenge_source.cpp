// ChallengeSource implementations (static file, dynamic mscep_admin fetch behind a FetchGate) and the per-profile set.
#include "proxy/challenge/challenge_source.h"

#include "base/secret_file.h"

namespace scepproxy::challenge {
namespace {

double seconds_since(SteadyTime start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ChallengeResult StaticChallengeSource::obtain(SteadyTime) {
    ChallengeResult result;
    std::string error;
    if (auto password = read_secret_file(password_file_, &error)) {
        result.outcome = ChallengeOutcome::ok;
        result.password = std::move(*password);
    } else {
        result.outcome = ChallengeOutcome::internal_error;
        result.detail = "challenge password file: " + error;
    }
    return result;
}

DynamicChallengeSource::DynamicChallengeSource(std::string profile, const conf::ChallengeConfig& config,
                                               MscepAdminRequest request, FetchObserver observer, Fetch fetch)
    : profile_(std::move(profile)),
      request_(std::move(request)),
      lifetime_(config.lifetime),
      queue_timeout_(config.queue_timeout),
      observer_(std::move(observer)),
      fetch_(std::move(fetch)),
      gate_(config.max_concurrent_fetches) {}

ChallengeResult DynamicChallengeSource::obtain(SteadyTime queued_at) {
    if (!gate_.acquire(queued_at + queue_timeout_)) {
        ChallengeResult busy;
        busy.outcome = ChallengeOutcome::busy;
        busy.detail = "no free fetch slot within challenge.queue_timeout (" + std::to_string(gate_.in_use()) +
                      " fetches in flight)";
        report(busy, 0);
        return busy;
    }
    FetchSlot slot(gate_);
    const SteadyTime started = std::chrono::steady_clock::now();
    ChallengeResult result = fetch_(request_);
    report(result, seconds_since(started));
    return result;
}

void DynamicChallengeSource::report(const ChallengeResult& result, double seconds) const {
    if (!observer_) return;
    observer_(FetchReport{profile_, result.outcome, result.detail, result.http_status, seconds});
}

std::optional<MscepAdminRequest> mscep_admin_request_for(const conf::ChallengeConfig& config, std::string* error) {
    auto password = read_secret_file(config.password_file, error);
    if (!password) return std::nullopt;
    MscepAdminRequest request;
    request.url = config.url;
    request.auth = config.auth;
    request.username = config.username;
    request.password = std::move(*password);
    request.client_cert_file = config.client_cert_file;
    request.client_key_file = config.client_key_file;
    request.ca_file = config.ca_file;
    request.verify = config.verify;
    request.timeout = config.timeout;
    request.expected_length = config.expected_length;
    return request;
}

std::unique_ptr<ChallengeSources> ChallengeSources::open(const conf::Config& config, FetchObserver observer,
                                                         std::string* error,
                                                         std::optional<std::string_view> only_profile) {
    auto sources = std::make_unique<ChallengeSources>();
    for (const auto& profile : config.profiles) {
        if (only_profile && profile.name != *only_profile) continue;
        const conf::ChallengeConfig& challenge = profile.challenge;
        switch (challenge.type) {
            case conf::ChallengeType::none: break;
            case conf::ChallengeType::static_password:
                sources->add(profile.name, std::make_unique<StaticChallengeSource>(challenge.password_file));
                break;
            case conf::ChallengeType::dynamic: {
                std::string why;
                auto request = mscep_admin_request_for(challenge, &why);
                if (!request) {
                    *error = "profiles." + profile.name + ".challenge.password_file: " + why;
                    return nullptr;
                }
                init_http_client_library();  // now, while this is the only thread
                sources->add(profile.name, std::make_unique<DynamicChallengeSource>(profile.name, challenge,
                                                                                    std::move(*request), observer));
                break;
            }
        }
    }
    return sources;
}

ChallengeSource* ChallengeSources::find(std::string_view profile) const {
    const auto it = sources_.find(profile);
    return it == sources_.end() ? nullptr : it->second.get();
}

void ChallengeSources::add(std::string profile, std::unique_ptr<ChallengeSource> source) {
    sources_[std::move(profile)] = std::move(source);
}

}  // namespace scepproxy::challenge
