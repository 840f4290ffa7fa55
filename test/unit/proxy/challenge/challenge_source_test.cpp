// Tests for challenge sources: static files, the dynamic source's fetch slots, bounded wait and reports, and opening per config.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proxy/challenge/challenge_source.h"

using namespace scepproxy;
using namespace scepproxy::challenge;
using namespace std::chrono_literals;

namespace {

// A file in a fresh temp dir, removed with it.
class TempFile {
public:
    explicit TempFile(const std::string& content) {
        char dir_template[] = "/tmp/scepproxy-challenge-XXXXXX";
        dir_ = mkdtemp(dir_template);
        path_ = dir_ + "/secret";
        std::ofstream(path_, std::ios::binary) << content;
    }
    ~TempFile() { std::filesystem::remove_all(dir_); }
    const std::string& path() const { return path_; }

private:
    std::string dir_;
    std::string path_;
};

conf::ChallengeConfig dynamic_config(unsigned max_concurrent, conf::Duration queue_timeout) {
    conf::ChallengeConfig config;
    config.type = conf::ChallengeType::dynamic;
    config.url = "http://ndes.example/certsrv/mscep_admin/";
    config.max_concurrent_fetches = max_concurrent;
    config.queue_timeout = queue_timeout;
    return config;
}

ChallengeResult ok_result(std::string password) {
    ChallengeResult result;
    result.outcome = ChallengeOutcome::ok;
    result.password = std::move(password);
    result.http_status = 200;
    return result;
}

// A fetch that blocks until released, counting how many callers are inside it at once.
class HeldFetch {
public:
    ChallengeResult operator()(const MscepAdminRequest&) {
        std::unique_lock lock(mutex_);
        ++inside_;
        max_inside_ = std::max(max_inside_, inside_);
        changed_.notify_all();
        changed_.wait(lock, [this] { return released_; });
        --inside_;
        return ok_result("FROMNDES");
    }
    // Waits (bounded, generously) until `count` callers are inside; false if they never are.
    bool wait_inside(int count) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, 30s, [&] { return inside_ >= count; });
    }
    void release() {
        std::lock_guard lock(mutex_);
        released_ = true;
        changed_.notify_all();
    }
    int max_inside() {
        std::lock_guard lock(mutex_);
        return max_inside_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int inside_ = 0;
    int max_inside_ = 0;
    bool released_ = false;
};

}  // namespace

TEST_CASE("a static source reads its file on every call", "[challenge][source]") {
    TempFile file("first\n");
    StaticChallengeSource source(file.path());
    CHECK(source.obtain({}).password == "first");
    std::ofstream(file.path(), std::ios::trunc) << "second\n";
    CHECK(source.obtain({}).password == "second");
    CHECK_FALSE(source.lifetime());
    StaticChallengeSource missing("/nonexistent/scepproxy/challenge");
    const ChallengeResult result = missing.obtain({});
    CHECK(result.outcome == ChallengeOutcome::internal_error);
    CHECK(result.detail == "challenge password file: cannot read /nonexistent/scepproxy/challenge");
}

TEST_CASE("a dynamic source reports each fetch to its observer", "[challenge][source]") {
    std::vector<std::pair<std::string, ChallengeOutcome>> reports;
    auto config = dynamic_config(2, 5s);
    config.lifetime = 30min;
    MscepAdminRequest request;
    request.password = "svc-password";
    MscepAdminRequest seen;
    DynamicChallengeSource source(
        "wifi", config, request, [&](const FetchReport& r) { reports.emplace_back(std::string(r.profile), r.outcome); },
        [&](const MscepAdminRequest& request) {
            seen = request;
            return ok_result("0123456789ABCDEF");
        });
    const ChallengeResult result = source.obtain(std::chrono::steady_clock::now());
    CHECK(result.outcome == ChallengeOutcome::ok);
    CHECK(result.password == "0123456789ABCDEF");
    CHECK(seen.password == "svc-password");
    CHECK(source.lifetime() == 30min);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == std::make_pair(std::string("wifi"), ChallengeOutcome::ok));
}

TEST_CASE("a dynamic source runs at most max_concurrent_fetches at once and refuses after queue_timeout",
          "[challenge][source]") {
    HeldFetch fetch;
    std::vector<ChallengeOutcome> reported;
    std::mutex reported_mutex;
    DynamicChallengeSource source(
        "wifi", dynamic_config(2, 1ms), MscepAdminRequest{},
        [&](const FetchReport& r) {
            std::lock_guard lock(reported_mutex);
            reported.push_back(r.outcome);
        },
        std::ref(fetch));
    // A generous queue wait for the first two: they must both get in, and at once.
    const auto patient = [&] { return source.obtain(std::chrono::steady_clock::now() + 1h); };
    auto first = std::async(std::launch::async, patient);
    auto second = std::async(std::launch::async, patient);
    REQUIRE(fetch.wait_inside(2));
    // Both slots are held: the third waits its 1 ms and is refused without fetching.
    const ChallengeResult third = source.obtain(std::chrono::steady_clock::now());
    CHECK(third.outcome == ChallengeOutcome::busy);
    CHECK(third.detail == "no free fetch slot within challenge.queue_timeout (2 fetches in flight)");
    fetch.release();
    CHECK(first.get().outcome == ChallengeOutcome::ok);
    CHECK(second.get().outcome == ChallengeOutcome::ok);
    CHECK(fetch.max_inside() == 2);
    // Slots were given back: a later call fetches again.
    CHECK(source.obtain(std::chrono::steady_clock::now()).outcome == ChallengeOutcome::ok);
    std::lock_guard lock(reported_mutex);
    CHECK(std::count(reported.begin(), reported.end(), ChallengeOutcome::busy) == 1);
    CHECK(std::count(reported.begin(), reported.end(), ChallengeOutcome::ok) == 3);
}

TEST_CASE("a waiting fetch gets the slot another one frees", "[challenge][source]") {
    HeldFetch fetch;
    DynamicChallengeSource source("wifi", dynamic_config(1, 1h), MscepAdminRequest{}, nullptr, std::ref(fetch));
    auto first = std::async(std::launch::async, [&] { return source.obtain(std::chrono::steady_clock::now()); });
    REQUIRE(fetch.wait_inside(1));
    auto second = std::async(std::launch::async, [&] { return source.obtain(std::chrono::steady_clock::now()); });
    fetch.release();
    CHECK(first.get().outcome == ChallengeOutcome::ok);
    CHECK(second.get().outcome == ChallengeOutcome::ok);
    CHECK(fetch.max_inside() == 1);
}

TEST_CASE("opening sources per config: types, missing secrets, one profile only", "[challenge][source]") {
    TempFile account("svc-password\n");
    conf::Config config;
    config.profiles.resize(3);
    config.profiles[0].name = "plain";
    config.profiles[1].name = "fixed";
    config.profiles[1].challenge.type = conf::ChallengeType::static_password;
    config.profiles[1].challenge.password_file = "/nonexistent/read-per-call";  // not read at open
    config.profiles[2].name = "ndes";
    config.profiles[2].challenge = dynamic_config(2, 5s);
    config.profiles[2].challenge.password_file = account.path();

    std::string error;
    auto sources = ChallengeSources::open(config, nullptr, &error);
    REQUIRE(sources);
    CHECK(sources->find("plain") == nullptr);
    CHECK(dynamic_cast<StaticChallengeSource*>(sources->find("fixed")));
    CHECK(dynamic_cast<DynamicChallengeSource*>(sources->find("ndes")));
    CHECK(sources->find("unknown") == nullptr);

    config.profiles[2].challenge.password_file = "/nonexistent/ndes.pass";
    CHECK_FALSE(ChallengeSources::open(config, nullptr, &error));
    CHECK(error == "profiles.ndes.challenge.password_file: cannot read /nonexistent/ndes.pass");
    // The CLI opens only the profile it needs: another profile's missing secret doesn't matter.
    auto only_fixed = ChallengeSources::open(config, nullptr, &error, "fixed");
    REQUIRE(only_fixed);
    CHECK(only_fixed->find("fixed"));
    CHECK(only_fixed->find("ndes") == nullptr);
}

TEST_CASE("the mscep_admin request carries every setting of the profile", "[challenge][source]") {
    TempFile account("svc-password\n");
    conf::ChallengeConfig config = dynamic_config(2, 5s);
    config.password_file = account.path();
    config.auth = conf::ChallengeAuth::ntlm;
    config.username = "CORP\\svc-ndes";
    config.client_cert_file = "/c.pem";
    config.client_key_file = "/k.pem";
    config.ca_file = "/ca.pem";
    config.verify = false;
    config.timeout = 3s;
    config.expected_length = 16;
    std::string error;
    const auto request = mscep_admin_request_for(config, &error);
    REQUIRE(request);
    CHECK(request->url == config.url);
    CHECK(request->auth == conf::ChallengeAuth::ntlm);
    CHECK(request->username == "CORP\\svc-ndes");
    CHECK(request->password == "svc-password");
    CHECK(request->client_cert_file == "/c.pem");
    CHECK(request->client_key_file == "/k.pem");
    CHECK(request->ca_file == "/ca.pem");
    CHECK_FALSE(request->verify);
    CHECK(request->timeout == 3s);
    CHECK(request->expected_length == 16);
}
