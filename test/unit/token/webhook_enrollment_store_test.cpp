// Tests specific to the webhook store: what the MDM is sent, how its answers and failures become verdicts.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "test/unit/token/fake_mdm_webhook.h"
#include "test/unit/token/temp_directory.h"
#include "test/unit/token/test_session.h"
#include "token/cached_enrollment_store.h"
#include "token/webhook/webhook_enrollment_store.h"

namespace scepproxy::token::webhook {
namespace {

using nlohmann::json;
using test::FakeMdmWebhook;
using test::RecordingCallback;
using test::TestSession;
using namespace std::chrono_literals;

constexpr int64_t kNow = 1'700'000'000;

class RecordingObserver final : public StoreObserver {
public:
    void record(StoreOperation, StoreOutcome, double) override {}
    void report(const StoreEvent& event) override {
        std::lock_guard lock(mutex);
        events.push_back(event);
    }
    std::mutex mutex;
    std::vector<StoreEvent> events;
};

// A webhook store on a temp SQLite file and a fake MDM, with one token issued to device-1.
struct WebhookFixture {
    explicit WebhookFixture(std::chrono::milliseconds timeout = 5s) {
        WebhookStoreOptions options;
        options.local.path = directory.file("enrollments.db");
        options.webhook.url = mdm.url();
        options.webhook.bearer_token = FakeMdmWebhook::kBearerToken;
        options.webhook.timeout = timeout;
        options.observer = &observer;
        auto opened = open_webhook_enrollment_store(options);
        INFO(opened.message);
        REQUIRE(opened.ok());
        store = std::move(opened.value);
        auto generated = EnrollmentToken::generate();
        REQUIRE(generated);
        token = NewToken{generated->hash(), "wifi", "device-1", kNow, kNow + 3600};
        REQUIRE(store->issue_token(token) == StoreStatus::ok);
    }

    AccessQuery pki_operation() const {
        AccessQuery query;
        query.token_hash = token.hash;
        query.check_device = true;
        query.now = kNow + 1;
        return query;
    }

    test::TempDirectory directory;
    FakeMdmWebhook mdm;
    RecordingObserver observer;
    std::unique_ptr<EnrollmentStore> store;
    NewToken token;
};

}  // namespace

TEST_CASE("webhook store: the MDM is asked with the token's hash, device, profile and request, and the bearer token",
          "[webhook]") {
    WebhookFixture fixture;
    TestSession session(*fixture.store);
    AccessQuery query = fixture.pki_operation();
    query.message_type = "PKCSReq";
    query.transaction_id = "tx-42";
    const AccessDecision decision = session.check(query);
    INFO(decision.message);
    CHECK(decision.verdict == AccessVerdict::allow);
    CHECK(decision.profile == "wifi");

    const auto requests = fixture.mdm.requests();
    REQUIRE(requests.size() == 1);
    const json& body = requests[0]["body"];
    CHECK(body["token_sha256"] == fixture.token.hash.hex());
    CHECK(body["device_id"] == "device-1");
    CHECK(body["profile"] == "wifi");
    CHECK(body["operation"] == "PKIOperation");  // not given: the only operation that checks devices
    CHECK(body["message_type"] == "PKCSReq");
    CHECK(body["transaction_id"] == "tx-42");
    CHECK(requests[0]["headers"]["authorization"] == std::string("Bearer ") + FakeMdmWebhook::kBearerToken);
    CHECK(requests[0]["headers"]["content-type"] == "application/json");
}

TEST_CASE("webhook store: requests that don't check the device, or fail locally, never reach the MDM", "[webhook]") {
    WebhookFixture fixture;
    TestSession session(*fixture.store);
    AccessQuery get_ca_cert = fixture.pki_operation();
    get_ca_cert.check_device = false;
    CHECK(session.check(get_ca_cert).verdict == AccessVerdict::allow);

    REQUIRE(fixture.store->set_device(DeviceRecord{"device-1", true, false, kNow}) == StoreStatus::ok);
    CHECK(session.check(fixture.pki_operation()).verdict == AccessVerdict::device_not_compliant);
    REQUIRE(fixture.store->revoke_token(fixture.token.hash, kNow) == StoreStatus::ok);
    CHECK(session.check(fixture.pki_operation()).verdict == AccessVerdict::token_revoked);
    AccessQuery unknown = fixture.pki_operation();
    unknown.token_hash.bytes[0] ^= 1;
    CHECK(session.check(unknown).verdict == AccessVerdict::token_unknown);

    CHECK(fixture.mdm.requests().empty());
}

TEST_CASE("webhook store: a refusal is device_not_compliant with the MDM's reason, reported for the log", "[webhook]") {
    WebhookFixture fixture;
    fixture.mdm.configure({{"devices", {{"device-1", {{"allow", false}, {"reason", "device wiped by admin"}}}}}});
    TestSession session(*fixture.store);
    const AccessDecision denied = session.check(fixture.pki_operation());
    CHECK(denied.verdict == AccessVerdict::device_not_compliant);
    CHECK(denied.message == "device wiped by admin");
    CHECK(denied.profile == "wifi");
    CHECK(fixture.store->check_access(fixture.pki_operation()).verdict == AccessVerdict::device_not_compliant);

    std::lock_guard lock(fixture.observer.mutex);
    REQUIRE(fixture.observer.events.size() == 2);
    CHECK(std::string(fixture.observer.events[0].name) == "store_webhook_denied");
    CHECK(fixture.observer.events[0].token_id == fixture.token.hash.id());
    CHECK(fixture.observer.events[0].detail == "device wiped by admin");
}

TEST_CASE("webhook store: no answer in time, a 5xx or a malformed answer is store_unavailable, profile known",
          "[webhook]") {
    WebhookFixture fixture(400ms);
    std::string why;
    SECTION("too slow") {
        fixture.mdm.configure({{"delay", 3}});
        why = "in time";
    }
    SECTION("HTTP 500") {
        fixture.mdm.configure({{"status", 500}});
        why = "HTTP 500";
    }
    SECTION("not JSON") {
        fixture.mdm.configure({{"raw_body", "<html>maintenance</html>"}});
        why = "not JSON";
    }
    SECTION("allow as a string") {
        fixture.mdm.configure({{"raw_body", R"({"allow":"yes"})"}});
        why = "allow";
    }
    SECTION("gone") {
        fixture.mdm.stop();
        why = "webhook request failed";
    }
    TestSession session(*fixture.store);
    const auto started = std::chrono::steady_clock::now();
    const AccessDecision failed = session.check(fixture.pki_operation());
    CHECK(std::chrono::steady_clock::now() - started < 400ms + 5s);
    CHECK(failed.verdict == AccessVerdict::store_unavailable);
    CHECK_THAT(failed.message, Catch::Contains(why));
    // The token itself checked out: what on_error: allow needs to know.
    CHECK(failed.profile == "wifi");
    CHECK(failed.device_id == "device-1");
}

TEST_CASE("webhook store: a wrong bearer token is refused by the MDM: a refusal, not an outage", "[webhook]") {
    test::TempDirectory directory;
    FakeMdmWebhook mdm;
    RecordingObserver observer;
    WebhookStoreOptions options;
    options.local.path = directory.file("enrollments.db");
    options.webhook.url = mdm.url();
    options.webhook.bearer_token = "not-the-right-one";
    options.observer = &observer;
    auto opened = open_webhook_enrollment_store(options);
    REQUIRE(opened.ok());
    auto generated = EnrollmentToken::generate();
    REQUIRE(generated);
    const NewToken token{generated->hash(), "wifi", "device-1", kNow, kNow + 3600};
    REQUIRE(opened.value->issue_token(token) == StoreStatus::ok);
    AccessQuery query;
    query.token_hash = token.hash;
    query.check_device = true;
    query.now = kNow + 1;
    const AccessDecision decision = opened.value->check_access(query);
    CHECK(decision.verdict == AccessVerdict::device_not_compliant);
    CHECK(decision.message == "webhook answered HTTP 401");
    std::lock_guard lock(observer.mutex);
    REQUIRE(observer.events.size() == 1);
    CHECK(std::string(observer.events[0].name) == "store_webhook_denied");
    CHECK(observer.events[0].level == StoreEvent::Level::warn);  // every device is refused: the operator's
    CHECK(observer.events[0].detail == "webhook answered HTTP 401");
}

TEST_CASE("webhook store: with on_error allow in front, a webhook outage lets known tokens through",
          "[webhook][on_error]") {
    WebhookFixture fixture(300ms);
    StoreCacheOptions cache;
    cache.cache_ttl = 0ms;
    cache.allow_on_error = true;
    auto front = make_cached_enrollment_store(std::move(fixture.store), cache, nullptr);
    fixture.mdm.configure({{"delay", 3}});
    TestSession session(*front);
    const AccessDecision allowed = session.check(fixture.pki_operation());
    CHECK(allowed.verdict == AccessVerdict::allow);
    CHECK(allowed.allowed_on_error);
    CHECK(allowed.profile == "wifi");
    // A revoked token is refused locally, outage or not.
    REQUIRE(front->revoke_token(fixture.token.hash, kNow) == StoreStatus::ok);
    CHECK(session.check(fixture.pki_operation()).verdict == AccessVerdict::token_revoked);
}

TEST_CASE("webhook store: with on_error allow in front, a 4xx from the MDM still refuses; a 5xx lets through",
          "[webhook][on_error]") {
    WebhookFixture fixture;
    StoreCacheOptions cache;
    cache.cache_ttl = 0ms;
    cache.allow_on_error = true;
    auto front = make_cached_enrollment_store(std::move(fixture.store), cache, nullptr);
    TestSession session(*front);
    REQUIRE(session.check(fixture.pki_operation()).verdict == AccessVerdict::allow);  // known to this worker
    for (const int status : {400, 403, 404, 429}) {
        INFO("HTTP " << status);
        fixture.mdm.configure({{"status", status}});  // the body still says {"allow": true}
        const AccessDecision refused = session.check(fixture.pki_operation());
        CHECK(refused.verdict == AccessVerdict::device_not_compliant);
        CHECK_FALSE(refused.allowed_on_error);
        CHECK(refused.message == "webhook answered HTTP " + std::to_string(status));
    }
    fixture.mdm.configure({{"status", 503}});
    const AccessDecision allowed = session.check(fixture.pki_operation());
    CHECK(allowed.verdict == AccessVerdict::allow);
    CHECK(allowed.allowed_on_error);
}

TEST_CASE("webhook store: binding is the local store's", "[webhook][binding]") {
    WebhookFixture fixture;
    TestSession session(*fixture.store);
    BindQuery bind;
    bind.token_hash = fixture.token.hash;
    bind.transaction_id = "tx-1";
    bind.now = kNow + 1;
    CHECK(session.bind(bind).verdict == BindVerdict::bound);
    bind.transaction_id = "tx-2";
    CHECK(session.bind(bind).verdict == BindVerdict::transaction_mismatch);
    CHECK(fixture.mdm.requests().empty());
}

}  // namespace scepproxy::token::webhook
