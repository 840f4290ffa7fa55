// ChallengeSource: where a profile's challenge passwords come from (a static file or NDES's mscep_admin), and the set of them.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/challenge/challenge_outcome.h"
#include "proxy/challenge/fetch_gate.h"
#include "proxy/challenge/mscep_admin_client.h"

namespace scepproxy::challenge {

using SteadyTime = std::chrono::steady_clock::time_point;

// One finished mscep_admin fetch (or a refusal for want of a slot), for logs and metrics.
struct FetchReport {
    std::string_view profile;
    ChallengeOutcome outcome = ChallengeOutcome::ok;
    std::string_view detail;  // never a password
    long http_status = 0;
    double seconds = 0;  // the fetch itself, without the wait for a slot
};
using FetchObserver = std::function<void(const FetchReport&)>;

class ChallengeSource {
public:
    virtual ~ChallengeSource() = default;
    // Thread-safe; blocks. `queued_at` is when the caller asked (before any queueing of its
    // own): a dynamic source waits for a fetch slot until queued_at + queue_timeout at most.
    virtual ChallengeResult obtain(SteadyTime queued_at) = 0;
    // How long an obtained password stays valid; nullopt: until it is changed (static).
    virtual std::optional<conf::Duration> lifetime() const = 0;
};

// challenge.type static: the password file is read on every call, so editing it needs no restart.
class StaticChallengeSource final : public ChallengeSource {
public:
    explicit StaticChallengeSource(std::string password_file) : password_file_(std::move(password_file)) {}
    ChallengeResult obtain(SteadyTime queued_at) override;
    std::optional<conf::Duration> lifetime() const override { return std::nullopt; }

private:
    const std::string password_file_;
};

// challenge.type dynamic: a fresh single-use password from mscep_admin per call, at most
// max_concurrent_fetches at a time. Every call is reported to the observer (if any).
class DynamicChallengeSource final : public ChallengeSource {
public:
    using Fetch = std::function<ChallengeResult(const MscepAdminRequest&)>;

    // `request` carries the service account's password, read at start-up. `fetch` is
    // replaceable for tests; by default the libcurl client.
    DynamicChallengeSource(std::string profile, const conf::ChallengeConfig& config, MscepAdminRequest request,
                           FetchObserver observer, Fetch fetch = fetch_mscep_admin_challenge);
    ChallengeResult obtain(SteadyTime queued_at) override;
    std::optional<conf::Duration> lifetime() const override { return lifetime_; }

private:
    void report(const ChallengeResult& result, double seconds) const;

    const std::string profile_;
    const MscepAdminRequest request_;
    const conf::Duration lifetime_;
    const conf::Duration queue_timeout_;
    const FetchObserver observer_;
    const Fetch fetch_;
    FetchGate gate_;
};

// The mscep_admin request a dynamic profile makes; reads the service account's password
// file. Nullopt and *error when it can't be read.
std::optional<MscepAdminRequest> mscep_admin_request_for(const conf::ChallengeConfig& config, std::string* error);

// Every profile's source, opened once (at start-up for the daemon, per command for the CLI).
class ChallengeSources {
public:
    // Opens the sources of all profiles, or of `only_profile` alone. Reads the service
    // accounts' passwords now. Null and *error ("profiles.P.challenge.password_file: ...") on failure.
    static std::unique_ptr<ChallengeSources> open(const conf::Config& config, FetchObserver observer,
                                                  std::string* error,
                                                  std::optional<std::string_view> only_profile = std::nullopt);

    // Null when the profile has no challenge (type none) or was not opened.
    ChallengeSource* find(std::string_view profile) const;
    // Sets (or replaces) a profile's source: how open() fills the set, and how tests build one.
    void add(std::string profile, std::unique_ptr<ChallengeSource> source);

private:
    std::map<std::string, std::unique_ptr<ChallengeSource>, std::less<>> sources_;
};

}  // namespace scepproxy::challenge
