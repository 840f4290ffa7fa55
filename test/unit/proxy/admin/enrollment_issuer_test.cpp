// Tests for issuing enrollments: checks before any fetch, the challenge's lifetime capping the expiry, no token on failure.
#include <catch2/catch.hpp>

#include <fstream>
#include <limits>

#include "proxy/admin/enrollment_issuer.h"
#include "test/unit/token/temp_directory.h"
#include "token/enrollment_token.h"
#include "token/store_registry.h"

using namespace scepproxy;
using namespace scepproxy::proxy;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kNow = 1'800'000'000;

// A config with profiles "dynamic" (lifetime 60m, token_ttl 55m), "fixed" (static) and "plain" (none),
// an SQLite store in a temp dir, and a dynamic source whose fetch answers `next_fetch`.
struct IssuerFixture {
    token::test::TempDirectory directory;
    conf::Config config;
    std::unique_ptr<token::EnrollmentStore> store;
    challenge::ChallengeSources sources;
    challenge::ChallengeResult next_fetch;
    int fetches = 0;

    IssuerFixture() {
        config.scep.public_url = "https://scep.example.com";
        config.store.sqlite.path = directory.file("enrollments.db");
        config.store.cache_ttl = 0ms;
        config.profiles.resize(3);
        config.profiles[0].name = "dynamic";
        config.profiles[0].challenge.type = conf::ChallengeType::dynamic;
        config.profiles[0].challenge.lifetime = 60min;
        config.profiles[0].token_ttl = 55min;
        config.profiles[1].name = "fixed";
        config.profiles[1].challenge.type = conf::ChallengeType::static_password;
        config.profiles[1].challenge.password_file = directory.file("static.pass");
        config.profiles[1].token_ttl = 24h;
        config.profiles[2].name = "plain";
        std::ofstream(directory.file("static.pass")) << "static-secret\n";
        auto opened = token::open_enrollment_store(config.store);
        REQUIRE(opened.ok());
        store = std::move(opened.value);
        sources.add("dynamic",
                    std::make_unique<challenge::DynamicChallengeSource>("dynamic", config.profiles[0].challenge,
                                                                        challenge::MscepAdminRequest{}, nullptr,
                                                                        [this](const challenge::MscepAdminRequest&) {
                                                                            ++fetches;
                                                                            return next_fetch;
                                                                        }));
        sources.add("fixed", std::make_unique<challenge::StaticChallengeSource>(directory.file("static.pass")));
        next_fetch.outcome = challenge::ChallengeOutcome::ok;
        next_fetch.password = "0123456789ABCDEF";
    }

    IssueResult issue(const std::string& profile, const std::string& device, std::optional<conf::Duration> ttl = {}) {
        IssueRequest request;
        request.profile = profile;
        request.device_id = device;
        request.ttl = ttl;
        request.now = kNow;
        request.queued_at = std::chrono::steady_clock::now();
        return issue_enrollment(config, *store, sources, request);
    }

    // How many tokens the store holds (purging everything counts them; the fixture is per test).
    int64_t stored_tokens() {
        const auto purged = store->purge_expired(std::numeric_limits<int64_t>::max());
        REQUIRE(purged.ok());
        return purged.value;
    }
};

}  // namespace

TEST_CASE("a dynamic challenge comes with the token; its expiry is capped by the challenge lifetime", "[issuer]") {
    IssuerFixture f;
    const IssueResult issued = f.issue("dynamic", "device-1", 2h);
    REQUIRE(issued.status == IssueStatus::ok);
    CHECK(issued.enrollment.challenge == "0123456789ABCDEF");
    CHECK(issued.enrollment.expires_at == kNow + 3600);  // ttl 2h, challenge lifetime 60m
    CHECK(issued.enrollment.scep_url == "https://scep.example.com/scep/" + issued.enrollment.token);
    const auto stored = f.store->find_token(token::EnrollmentToken::parse(issued.enrollment.token)->hash());
    REQUIRE(stored.ok());
    CHECK(stored.value.expires_at == kNow + 3600);
    CHECK(stored.value.profile == "dynamic");
    // Shorter than the lifetime: the asked ttl, or else the profile's token_ttl.
    CHECK(f.issue("dynamic", "device-2", 10min).enrollment.expires_at == kNow + 600);
    CHECK(f.issue("dynamic", "device-3").enrollment.expires_at == kNow + 55 * 60);
    CHECK(f.fetches == 3);
}

TEST_CASE("a failed challenge leaves no token behind and says why", "[issuer]") {
    IssuerFixture f;
    for (auto outcome : {challenge::ChallengeOutcome::password_cache_full, challenge::ChallengeOutcome::auth_failed,
                         challenge::ChallengeOutcome::timeout, challenge::ChallengeOutcome::unparsable_page}) {
        f.next_fetch = challenge::ChallengeResult{outcome, {}, "what NDES did", 200};
        const IssueResult result = f.issue("dynamic", "device-1");
        CHECK(result.status == IssueStatus::challenge_unavailable);
        CHECK(result.challenge_outcome == outcome);
        CHECK(result.message == std::string("challenge: ") + challenge::to_string(outcome) + " (what NDES did)");
        CHECK(result.enrollment.token.empty());
    }
    CHECK(f.stored_tokens() == 0);
    CHECK(f.store->get_device("device-1").status == token::StoreStatus::not_found);
}

TEST_CASE("invalid requests are refused before any password is fetched", "[issuer]") {
    IssuerFixture f;
    CHECK(f.issue("nope", "device-1").status == IssueStatus::unknown_profile);
    CHECK(f.issue("dynamic", "").status == IssueStatus::bad_device_id);
    CHECK(f.issue("dynamic", std::string("bad\x01id")).status == IssueStatus::bad_device_id);
    CHECK(f.issue("dynamic", std::string(257, 'd')).status == IssueStatus::bad_device_id);
    CHECK(f.issue("dynamic", "device-1", 0ms).status == IssueStatus::bad_ttl);
    CHECK(f.fetches == 0);
    CHECK(f.stored_tokens() == 0);
}

TEST_CASE("static and no challenges: the file's password, or none; the ttl is not capped", "[issuer]") {
    IssuerFixture f;
    const IssueResult fixed = f.issue("fixed", "device-1");
    REQUIRE(fixed.status == IssueStatus::ok);
    CHECK(fixed.enrollment.challenge == "static-secret");
    CHECK(fixed.enrollment.expires_at == kNow + 24 * 3600);
    const IssueResult plain = f.issue("plain", "device-2", 48h);
    REQUIRE(plain.status == IssueStatus::ok);
    CHECK_FALSE(plain.enrollment.challenge);
    CHECK(plain.enrollment.expires_at == kNow + 48 * 3600);
    CHECK(f.stored_tokens() == 2);
}

TEST_CASE("a profile whose challenge source wasn't opened is an internal error, not a token without challenge",
          "[issuer]") {
    IssuerFixture f;
    f.config.profiles[2].challenge.type = conf::ChallengeType::static_password;  // "plain" now needs a source
    const IssueResult result = f.issue("plain", "device-1");
    CHECK(result.status == IssueStatus::challenge_unavailable);
    CHECK(result.challenge_outcome == challenge::ChallengeOutcome::internal_error);
    CHECK(f.stored_tokens() == 0);
}
