// Tests for the store's front layer: the per-worker cache, its invalidation, the on_error policy and what the observer sees.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test/unit/token/test_session.h"
#include "token/cached_enrollment_store.h"

namespace scepproxy::token {
namespace {

using test::RecordingCallback;

constexpr int64_t kNow = 1'700'000'000;
constexpr int64_t kTtlNs = 5'000'000'000;  // the cache_ttl the tests use

TokenHash hash_of(uint8_t n) {
    TokenHash hash;
    hash.bytes.fill(n);
    return hash;
}

AccessQuery query_for(const TokenHash& hash, bool check_device = true, int64_t now = kNow) {
    AccessQuery query;
    query.token_hash = hash;
    query.check_device = check_device;
    query.now = now;
    return query;
}

AccessDecision decision(AccessVerdict verdict, std::string profile = "wifi", int64_t expires_at = kNow + 3600) {
    AccessDecision d;
    d.verdict = verdict;
    d.profile = std::move(profile);
    d.device_id = d.profile.empty() ? "" : "device-1";
    d.expires_at = d.profile.empty() ? 0 : expires_at;
    return d;
}

// A backend whose answers the test sets, counting what it is asked. Its sessions answer
// inline, or (deferred) only when the test releases them, like a network backend.
class ScriptedStore final : public EnrollmentStore {
public:
    struct Shared {
        std::map<std::string, AccessDecision> answers;  // by hash hex; missing: token_unknown
        int access_checks = 0;
        int binds = 0;
        BindVerdict bind_verdict = BindVerdict::bound;
        bool deferred = false;
        std::vector<std::pair<SessionCallback*, AccessDecision>> held;  // deferred answers
    };

    explicit ScriptedStore(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

    const char* backend_name() const override { return "scripted"; }
    StoreStatus issue_token(const NewToken&) override { return StoreStatus::ok; }
    StoreResult<TokenRecord> find_token(const TokenHash&) override { return {}; }
    StoreStatus revoke_token(const TokenHash&, int64_t) override { return StoreStatus::ok; }
    StoreStatus set_device(const DeviceRecord&) override { return StoreStatus::ok; }
    StoreResult<DeviceRecord> get_device(const std::string&) override { return {StoreStatus::not_found, {}, "no"}; }
    StoreResult<int64_t> purge_expired(int64_t) override { return {}; }
    AccessDecision check_access(const AccessQuery& query) override { return answer(query); }
    BindDecision bind_transaction(const BindQuery&) override {
        ++shared_->binds;
        return {shared_->bind_verdict, ""};
    }
    FinishResult finish_transaction(const FinishQuery&) override { return {StoreStatus::ok, ""}; }

    std::unique_ptr<EnrollmentSession> open_session(PostToLoop) override { return std::make_unique<Session>(*this); }

    AccessDecision answer(const AccessQuery& query) {
        ++shared_->access_checks;
        const auto it = shared_->answers.find(query.token_hash.hex());
        if (it != shared_->answers.end()) return it->second;
        AccessDecision unknown;
        unknown.verdict = AccessVerdict::token_unknown;
        return unknown;
    }

private:
    struct Session final : EnrollmentSession {
        explicit Session(ScriptedStore& store) : store(store) {}
        void check_access(const AccessQuery& query, SessionCallback& done) override {
            AccessDecision decision = store.answer(query);
            if (store.shared_->deferred) {
                store.shared_->held.emplace_back(&done, decision);
            } else {
                done.on_access_decided(decision);
            }
        }
        void bind_transaction(const BindQuery& query, SessionCallback& done) override {
            done.on_transaction_bound(store.bind_transaction(query));
        }
        void finish_transaction(const FinishQuery& query, SessionCallback& done) override {
            done.on_transaction_finished(store.finish_transaction(query));
        }
        void cancel(SessionCallback& done) override {
            std::erase_if(store.shared_->held, [&](const auto& held) { return held.first == &done; });
        }
        ScriptedStore& store;
    };

    std::shared_ptr<Shared> shared_;
};

class RecordingObserver final : public StoreObserver {
public:
    void record(StoreOperation operation, StoreOutcome outcome, double seconds) override {
        ++counts[std::string(to_string(operation)) + "/" + to_string(outcome)];
        CHECK(seconds >= 0);
    }
    void report(const StoreEvent& event) override { events.push_back(event); }
    int count(const std::string& key) const {
        const auto it = counts.find(key);
        return it == counts.end() ? 0 : it->second;
    }
    std::map<std::string, int> counts;
    std::vector<StoreEvent> events;
};

// A front store over a scripted backend, with a clock the test moves.
struct Front {
    explicit Front(bool allow_on_error = false, int64_t ttl_ns = kTtlNs, size_t max_entries = 1000) {
        StoreCacheOptions options;
        options.cache_ttl = std::chrono::milliseconds(ttl_ns / 1'000'000);
        options.allow_on_error = allow_on_error;
        options.max_cache_entries = max_entries;
        options.monotonic_ns = [this] { return clock_ns; };
        store = make_cached_enrollment_store(std::make_unique<ScriptedStore>(backend), options, &observer);
        session = store->open_session([](std::function<void()>) {});
    }

    AccessDecision check(const AccessQuery& query) {
        RecordingCallback callback;
        session->check_access(query, callback);
        REQUIRE(callback.calls == 1);
        return callback.access;
    }

    std::shared_ptr<ScriptedStore::Shared> backend = std::make_shared<ScriptedStore::Shared>();
    RecordingObserver observer;
    int64_t clock_ns = 1'000'000'000;
    std::unique_ptr<EnrollmentStore> store;
    std::unique_ptr<EnrollmentSession> session;
};

}  // namespace

TEST_CASE("store cache: an answer is reused for cache_ttl, then asked again", "[cache]") {
    Front front;
    const TokenHash token = hash_of(1);
    front.backend->answers[token.hex()] = decision(AccessVerdict::allow);

    CHECK(front.check(query_for(token)).verdict == AccessVerdict::allow);
    front.clock_ns += kTtlNs - 1;
    const AccessDecision cached = front.check(query_for(token));
    CHECK(cached.verdict == AccessVerdict::allow);
    CHECK(cached.profile == "wifi");
    CHECK(front.backend->access_checks == 1);
    CHECK(front.observer.count("check_access/ok") == 1);
    CHECK(front.observer.count("check_access/cache_hit") == 1);

    front.clock_ns += 1;
    front.check(query_for(token));
    CHECK(front.backend->access_checks == 2);
}

TEST_CASE("store cache: refusals are cached too, store failures are not", "[cache]") {
    Front front;
    const TokenHash unknown = hash_of(2);
    const TokenHash failing = hash_of(3);
    front.backend->answers[failing.hex()] = decision(AccessVerdict::store_unavailable, "");

    for (int i = 0; i < 3; ++i) {
        CHECK(front.check(query_for(unknown)).verdict == AccessVerdict::token_unknown);
        CHECK(front.check(query_for(failing)).verdict == AccessVerdict::store_unavailable);
    }
    CHECK(front.backend->access_checks == 1 + 3);
    CHECK(front.observer.count("check_access/unavailable") == 3);
}

TEST_CASE("store cache: the query's kind is part of the key", "[cache]") {
    Front front;
    const TokenHash token = hash_of(4);
    front.backend->answers[token.hex()] = decision(AccessVerdict::allow);
    front.check(query_for(token, true));
    front.check(query_for(token, false));
    AccessQuery with_transaction = query_for(token, true);
    with_transaction.transaction_id = "tx-1";
    front.check(with_transaction);
    CHECK(front.backend->access_checks == 3);
    front.check(with_transaction);
    front.check(query_for(token, false));
    CHECK(front.backend->access_checks == 3);
}

TEST_CASE("store cache: a cached answer for a token that expired since says expired", "[cache]") {
    Front front;
    const TokenHash token = hash_of(5);
    front.backend->answers[token.hex()] = decision(AccessVerdict::device_not_compliant, "wifi", kNow + 10);
    CHECK(front.check(query_for(token, true, kNow)).verdict == AccessVerdict::device_not_compliant);
    const AccessDecision later = front.check(query_for(token, true, kNow + 10));
    CHECK(later.verdict == AccessVerdict::token_expired);
    CHECK(later.profile == "wifi");
    CHECK(front.backend->access_checks == 1);
}

TEST_CASE("store cache: local writes through the store invalidate every session's cache at once", "[cache]") {
    Front front;
    auto other_session = front.store->open_session([](std::function<void()>) {});
    const TokenHash token = hash_of(6);
    front.backend->answers[token.hex()] = decision(AccessVerdict::allow);
    front.check(query_for(token));
    RecordingCallback callback;
    other_session->check_access(query_for(token), callback);
    REQUIRE(front.backend->access_checks == 2);

    SECTION("revoke") { front.store->revoke_token(token, kNow); }
    SECTION("device state") { front.store->set_device(DeviceRecord{"device-1", true, false, kNow}); }
    front.backend->answers[token.hex()] = decision(AccessVerdict::token_revoked);
    CHECK(front.check(query_for(token)).verdict == AccessVerdict::token_revoked);
    RecordingCallback again;
    other_session->check_access(query_for(token), again);
    CHECK(again.access.verdict == AccessVerdict::token_revoked);
    CHECK(front.backend->access_checks == 4);
}

TEST_CASE("store cache: an answer that raced a local write is not kept", "[cache]") {
    Front front;
    front.backend->deferred = true;
    const TokenHash token = hash_of(7);
    front.backend->answers[token.hex()] = decision(AccessVerdict::allow);
    RecordingCallback callback;
    front.session->check_access(query_for(token), callback);
    REQUIRE(front.backend->held.size() == 1);
    front.store->revoke_token(token, kNow);  // while the backend's answer is on its way
    auto [done, answer] = front.backend->held.front();
    front.backend->held.clear();
    done->on_access_decided(answer);
    CHECK(callback.calls == 1);

    front.backend->deferred = false;
    front.check(query_for(token));
    CHECK(front.backend->access_checks == 2);
}

TEST_CASE("store cache: cache_ttl 0 asks the backend every time", "[cache]") {
    Front front(false, 0);
    const TokenHash token = hash_of(8);
    front.backend->answers[token.hex()] = decision(AccessVerdict::allow);
    for (int i = 0; i < 3; ++i) front.check(query_for(token));
    CHECK(front.backend->access_checks == 3);
    CHECK(front.observer.count("check_access/cache_hit") == 0);
}

TEST_CASE("store cache: a full cache drops stale entries, then everything, and answers stay right", "[cache]") {
    Front front(false, kTtlNs, 4);
    for (uint8_t i = 10; i < 20; ++i) {
        front.backend->answers[hash_of(i).hex()] = decision(AccessVerdict::allow);
        CHECK(front.check(query_for(hash_of(i))).verdict == AccessVerdict::allow);
    }
    CHECK(front.check(query_for(hash_of(99))).verdict == AccessVerdict::token_unknown);
    // Whatever was dropped is asked again, and still answered correctly.
    for (uint8_t i = 10; i < 20; ++i) CHECK(front.check(query_for(hash_of(i))).verdict == AccessVerdict::allow);
}

TEST_CASE("store cache: cancel stops the answer of a backend that answers later", "[cache]") {
    Front front;
    front.backend->deferred = true;
    const TokenHash token = hash_of(9);
    RecordingCallback cancelled;
    RecordingCallback kept;
    front.session->check_access(query_for(token), cancelled);
    front.session->check_access(query_for(token), kept);
    REQUIRE(front.backend->held.size() == 2);
    front.session->cancel(cancelled);
    CHECK(front.backend->held.size() == 1);  // the cancel reached the backend
    auto held = front.backend->held;
    front.backend->held.clear();
    for (auto& [done, answer] : held) done->on_access_decided(answer);
    CHECK(cancelled.calls == 0);
    CHECK(kept.calls == 1);
}

TEST_CASE("store cache: destroying a session cancels what it still waits for", "[cache]") {
    Front front;
    front.backend->deferred = true;
    RecordingCallback callback;
    front.session->check_access(query_for(hash_of(11)), callback);
    REQUIRE(front.backend->held.size() == 1);
    front.session.reset();
    CHECK(front.backend->held.empty());
}

namespace {

BindQuery bind_query(uint8_t token, std::string transaction_id) {
    BindQuery query;
    query.token_hash = hash_of(token);
    query.transaction_id = std::move(transaction_id);
    query.may_bind = true;
    return query;
}

BindVerdict bind(Front& front, const BindQuery& query) {
    RecordingCallback callback;
    front.session->bind_transaction(query, callback);
    REQUIRE(callback.calls == 1);
    return callback.bind.verdict;
}

FinishResult finish(Front& front, const BindQuery& bound, TransactionEnd end) {
    FinishQuery query;
    query.token_hash = bound.token_hash;
    query.transaction_id = bound.transaction_id;
    query.end = end;
    RecordingCallback callback;
    front.session->finish_transaction(query, callback);
    REQUIRE(callback.calls == 1);
    return callback.finish;
}

}  // namespace

TEST_CASE("store cache: a binding is remembered for cache_ttl: a resend of the bound transaction is already_bound",
          "[cache][binding]") {
    Front front;
    const BindQuery query = bind_query(12, "tx");
    CHECK(bind(front, query) == BindVerdict::bound);
    CHECK(bind(front, query) == BindVerdict::already_bound);  // the resend after PENDING
    CHECK(front.backend->binds == 1);
    CHECK(front.observer.count("bind_transaction/ok") == 1);
    CHECK(front.observer.count("bind_transaction/cache_hit") == 1);
    // Another transaction on the same token is the backend's to judge.
    front.backend->bind_verdict = BindVerdict::transaction_mismatch;
    CHECK(bind(front, bind_query(12, "other")) == BindVerdict::transaction_mismatch);
    CHECK(front.backend->binds == 2);
    // Past cache_ttl the backend is asked again.
    front.clock_ns += kTtlNs;
    front.backend->bind_verdict = BindVerdict::already_bound;
    CHECK(bind(front, query) == BindVerdict::already_bound);
    CHECK(front.backend->binds == 3);
}

TEST_CASE("store cache: refusals and failures to bind are not remembered", "[cache][binding]") {
    Front front;
    const BindQuery query = bind_query(13, "tx");
    for (BindVerdict refused : {BindVerdict::transaction_mismatch, BindVerdict::token_consumed, BindVerdict::not_bound,
                                BindVerdict::token_revoked, BindVerdict::store_unavailable}) {
        front.backend->bind_verdict = refused;
        CHECK(bind(front, query) == refused);
    }
    front.backend->bind_verdict = BindVerdict::bound;
    CHECK(bind(front, query) == BindVerdict::bound);
    CHECK(front.backend->binds == 6);
}

TEST_CASE("store cache: a local consume, release or revoke forgets every session's bindings", "[cache][binding]") {
    Front front;
    auto other_worker = front.store->open_session([](std::function<void()>) {});
    const BindQuery query = bind_query(14, "tx");
    auto bind_on_other = [&] {
        RecordingCallback callback;
        other_worker->bind_transaction(query, callback);
        REQUIRE(callback.calls == 1);
        return callback.bind.verdict;
    };
    front.backend->bind_verdict = BindVerdict::already_bound;
    auto prime = [&] {
        bind(front, query);
        bind_on_other();
        const int asked = front.backend->binds;
        bind(front, query);
        bind_on_other();
        CHECK(front.backend->binds == asked);  // both remembered
    };
    prime();
    CHECK(finish(front, query, TransactionEnd::release).status == StoreStatus::ok);
    int asked = front.backend->binds;
    bind(front, query);
    bind_on_other();
    CHECK(front.backend->binds == asked + 2);

    prime();
    CHECK(finish(front, query, TransactionEnd::consume).status == StoreStatus::ok);
    CHECK(front.observer.count("consume_transaction/ok") == 1);
    asked = front.backend->binds;
    bind_on_other();
    CHECK(front.backend->binds == asked + 1);

    prime();
    CHECK(front.store->revoke_token(query.token_hash, kNow) == StoreStatus::ok);
    asked = front.backend->binds;
    bind(front, query);
    CHECK(front.backend->binds == asked + 1);

    prime();
    FinishQuery control_plane;
    control_plane.token_hash = query.token_hash;
    control_plane.transaction_id = query.transaction_id;
    control_plane.end = TransactionEnd::consume;
    CHECK(front.store->finish_transaction(control_plane).status == StoreStatus::ok);
    asked = front.backend->binds;
    bind(front, query);
    CHECK(front.backend->binds == asked + 1);
    CHECK(front.store->bind_transaction(query).verdict == BindVerdict::already_bound);  // control plane: always asks
    CHECK(front.backend->binds == asked + 2);
}

TEST_CASE("store cache: cache_ttl 0 remembers no binding", "[cache][binding]") {
    Front front(false, 0);
    const BindQuery query = bind_query(15, "tx");
    CHECK(bind(front, query) == BindVerdict::bound);
    CHECK(bind(front, query) == BindVerdict::bound);
    CHECK(front.backend->binds == 2);
}

TEST_CASE("store cache: on_error deny passes store failures on", "[cache][on_error]") {
    Front front(false);
    const TokenHash token = hash_of(13);
    front.backend->answers[token.hex()] = decision(AccessVerdict::allow);
    front.check(query_for(token));
    front.clock_ns += 2 * kTtlNs;
    front.backend->answers[token.hex()] = decision(AccessVerdict::store_unavailable, "");
    const AccessDecision failed = front.check(query_for(token));
    CHECK(failed.verdict == AccessVerdict::store_unavailable);
    CHECK_FALSE(failed.allowed_on_error);
    // Even a failure that names the profile (a webhook that timed out) stays a failure.
    front.backend->answers[token.hex()] = decision(AccessVerdict::store_unavailable, "wifi");
    CHECK(front.check(query_for(token)).verdict == AccessVerdict::store_unavailable);
    CHECK(front.observer.count("check_access/allowed_on_error") == 0);
}

TEST_CASE("store cache: on_error allow lets through what is known to be valid, and nothing else", "[cache][on_error]") {
    Front front(true);
    const TokenHash seen = hash_of(14);
    const TokenHash never_seen = hash_of(15);
    const TokenHash vouched = hash_of(16);
    const TokenHash refused = hash_of(17);
    front.backend->answers[seen.hex()] = decision(AccessVerdict::allow, "wifi", kNow + 100);
    front.backend->answers[refused.hex()] = decision(AccessVerdict::device_not_compliant);
    front.check(query_for(seen));
    front.check(query_for(refused));

    front.clock_ns += 2 * kTtlNs;  // past the ttl: only the on_error policy may use the entries now
    AccessDecision down = decision(AccessVerdict::store_unavailable, "");
    down.message = "connection refused";
    for (const TokenHash* token : {&seen, &never_seen, &refused}) front.backend->answers[token->hex()] = down;
    AccessDecision only_remote_failed = decision(AccessVerdict::store_unavailable, "vpn");
    only_remote_failed.message = "webhook did not answer in time";
    front.backend->answers[vouched.hex()] = only_remote_failed;

    const AccessDecision stale = front.check(query_for(seen));
    CHECK(stale.verdict == AccessVerdict::allow);
    CHECK(stale.allowed_on_error);
    CHECK(stale.profile == "wifi");
    CHECK(stale.message == "connection refused");

    const AccessDecision remote = front.check(query_for(vouched));
    CHECK(remote.verdict == AccessVerdict::allow);
    CHECK(remote.allowed_on_error);
    CHECK(remote.profile == "vpn");

    // Unknown profile: nothing to forward to.
    CHECK(front.check(query_for(never_seen)).verdict == AccessVerdict::store_unavailable);
    // A refusal is never turned into an allow.
    CHECK(front.check(query_for(refused)).verdict == AccessVerdict::store_unavailable);
    // Nor a token whose own expiry has passed.
    CHECK(front.check(query_for(seen, true, kNow + 100)).verdict == AccessVerdict::store_unavailable);
    // Nor one revoked (or changed) locally since it was seen.
    front.store->revoke_token(seen, kNow);
    CHECK(front.check(query_for(seen)).verdict == AccessVerdict::store_unavailable);

    CHECK(front.observer.count("check_access/allowed_on_error") == 2);
    REQUIRE(front.observer.events.size() == 2);
    CHECK(std::string(front.observer.events[0].name) == "store_unavailable_allowed");
    CHECK(front.observer.events[0].token_id == seen.id());
    CHECK(front.observer.events[0].detail == "connection refused");
    CHECK(front.observer.events[0].level == StoreEvent::Level::warn);
}

TEST_CASE("store cache: issuing a token leaves the caches alone", "[cache]") {
    Front front;
    const TokenHash token = hash_of(21);
    front.backend->answers[token.hex()] = decision(AccessVerdict::allow);
    front.check(query_for(token));
    front.store->issue_token(NewToken{hash_of(22), "wifi", "device-2", kNow, kNow + 60});
    front.check(query_for(token));
    CHECK(front.backend->access_checks == 1);
}

TEST_CASE("store cache: control-plane operations are observed with their outcomes", "[cache]") {
    Front front;
    front.store->issue_token(NewToken{hash_of(20), "wifi", "device-1", kNow, kNow + 60});
    front.store->get_device("device-1");
    front.store->purge_expired(kNow);
    front.store->check_access(query_for(hash_of(20)));
    CHECK(front.observer.count("issue_token/ok") == 1);
    CHECK(front.observer.count("get_device/not_found") == 1);
    CHECK(front.observer.count("purge_expired/ok") == 1);
    CHECK(front.observer.count("check_access/ok") == 1);
    CHECK(std::string(front.store->backend_name()) == "scripted");
}

}  // namespace scepproxy::token
