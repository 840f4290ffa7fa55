// The EnrollmentStore conformance suite: the same cases run against every backend fixture.
#include <catch2/catch.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test/unit/token/store_backend_fixtures.h"
#include "token/enrollment_store.h"
#include "token/enrollment_token.h"

namespace scepproxy::token::test {
namespace {

constexpr int64_t kCreatedAt = 1'700'000'000;
constexpr int64_t kExpiresAt = kCreatedAt + 3300;

TokenHash fresh_hash() {
    auto token = EnrollmentToken::generate();
    REQUIRE(token);
    return token->hash();
}

NewToken new_token(const std::string& profile, const std::string& device_id) {
    NewToken token;
    token.hash = fresh_hash();
    token.profile = profile;
    token.device_id = device_id;
    token.created_at = kCreatedAt;
    token.expires_at = kExpiresAt;
    return token;
}

AccessQuery access_query(const TokenHash& hash, int64_t now, bool check_device) {
    AccessQuery query;
    query.token_hash = hash;
    query.now = now;
    query.check_device = check_device;
    return query;
}

DeviceRecord device_state(const std::string& device_id, bool enrolled, bool compliant, int64_t updated_at) {
    DeviceRecord device;
    device.device_id = device_id;
    device.enrolled = enrolled;
    device.compliant = compliant;
    device.updated_at = updated_at;
    return device;
}

BindQuery bind_query(const TokenHash& hash, const std::string& transaction_id, bool may_bind = true,
                     int64_t now = kCreatedAt + 1) {
    BindQuery query;
    query.token_hash = hash;
    query.transaction_id = transaction_id;
    query.may_bind = may_bind;
    query.now = now;
    return query;
}

FinishQuery finish_query(const TokenHash& hash, const std::string& transaction_id, TransactionEnd end) {
    FinishQuery query;
    query.token_hash = hash;
    query.transaction_id = transaction_id;
    query.end = end;
    query.now = kCreatedAt + 2;
    return query;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("store: an issued token can be found with what it was issued for", "[store]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    CHECK(std::string(store.backend_name()) == TestType::backend_name);

    const NewToken token = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);

    const auto found = store.find_token(token.hash);
    INFO(found.message);
    REQUIRE(found.ok());
    CHECK(found.value.hash == token.hash);
    CHECK(found.value.profile == "wifi");
    CHECK(found.value.device_id == "device-1");
    CHECK(found.value.created_at == kCreatedAt);
    CHECK(found.value.expires_at == kExpiresAt);
    CHECK_FALSE(found.value.revoked);
    CHECK(found.value.transaction_id.empty());

    const auto missing = store.find_token(fresh_hash());
    CHECK(missing.status == StoreStatus::not_found);
}

TEMPLATE_LIST_TEST_CASE("store: a hash that already exists is a conflict and changes nothing", "[store]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    const NewToken first = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(first) == StoreStatus::ok);

    NewToken duplicate = new_token("vpn", "device-2");
    duplicate.hash = first.hash;
    CHECK(store.issue_token(duplicate) == StoreStatus::conflict);

    const auto found = store.find_token(first.hash);
    REQUIRE(found.ok());
    CHECK(found.value.profile == "wifi");
    CHECK(found.value.device_id == "device-1");
    // The failed issue must not have registered its device either (one transaction).
    CHECK(store.get_device("device-2").status == StoreStatus::not_found);
}

TEMPLATE_LIST_TEST_CASE("store: invalid requests are refused and store nothing", "[store]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();

    NewToken token = new_token("wifi", "device-1");
    SECTION("empty profile") { token.profile.clear(); }
    SECTION("empty device id") { token.device_id.clear(); }
    SECTION("profile with a NUL byte") { token.profile = std::string("wi\0fi", 5); }
    SECTION("device id with a NUL byte") { token.device_id = std::string("dev\0ice", 7); }
    SECTION("device id longer than the limit") { token.device_id.assign(kMaxStoredNameBytes + 1, 'd'); }
    SECTION("expiry equal to creation") { token.expires_at = token.created_at; }
    SECTION("expiry before creation") { token.expires_at = token.created_at - 1; }
    SECTION("all-zero hash") { token.hash = TokenHash{}; }

    CHECK(store.issue_token(token) == StoreStatus::invalid);
    CHECK(store.find_token(token.hash).status == StoreStatus::not_found);
    CHECK(store.get_device("device-1").status == StoreStatus::not_found);
}

TEMPLATE_LIST_TEST_CASE("store: names at the length limit are accepted", "[store]", StoreBackendFixtures) {
    TestType fixture;
    const NewToken token = new_token(std::string(kMaxStoredNameBytes, 'p'), std::string(kMaxStoredNameBytes, 'd'));
    REQUIRE(fixture.store().issue_token(token) == StoreStatus::ok);
    const auto found = fixture.store().find_token(token.hash);
    REQUIRE(found.ok());
    CHECK(found.value.profile == token.profile);
    CHECK(found.value.device_id == token.device_id);
}

TEMPLATE_LIST_TEST_CASE("store: untrusted strings are stored as data, not SQL", "[store]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    const std::string device_id = "x'); DELETE FROM tokens; DROP TABLE devices; --";
    const std::string profile = "wifi\" OR 1=1 -- \xc3\xa9\xe2\x82\xac";
    const NewToken token = new_token(profile, device_id);
    REQUIRE(store.issue_token(token) == StoreStatus::ok);
    const NewToken other = new_token("wifi", "device-2");
    REQUIRE(store.issue_token(other) == StoreStatus::ok);

    const auto found = store.find_token(token.hash);
    REQUIRE(found.ok());
    CHECK(found.value.device_id == device_id);
    CHECK(found.value.profile == profile);
    CHECK(store.find_token(other.hash).ok());
    CHECK(store.get_device(device_id).ok());
    CHECK(store.get_device("device-2").ok());
    CHECK(store.get_device("%").status == StoreStatus::not_found);
}

TEMPLATE_LIST_TEST_CASE("store: revoking marks the token, once or twice, and an unknown token is not_found", "[store]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    const NewToken token = new_token("wifi", "device-1");
    const NewToken untouched = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);
    REQUIRE(store.issue_token(untouched) == StoreStatus::ok);

    CHECK(store.revoke_token(token.hash, kCreatedAt + 10) == StoreStatus::ok);
    CHECK(store.find_token(token.hash).value.revoked);
    CHECK(store.revoke_token(token.hash, kCreatedAt + 20) == StoreStatus::ok);
    CHECK(store.find_token(token.hash).value.revoked);
    CHECK_FALSE(store.find_token(untouched.hash).value.revoked);

    CHECK(store.revoke_token(fresh_hash(), kCreatedAt) == StoreStatus::not_found);
}

TEMPLATE_LIST_TEST_CASE("store: issuing registers an unseen device as enrolled and compliant", "[store]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    REQUIRE(store.issue_token(new_token("wifi", "new-device")) == StoreStatus::ok);

    const auto device = store.get_device("new-device");
    INFO(device.message);
    REQUIRE(device.ok());
    CHECK(device.value.device_id == "new-device");
    CHECK(device.value.enrolled);
    CHECK(device.value.compliant);
    CHECK(device.value.updated_at == kCreatedAt);
}

TEMPLATE_LIST_TEST_CASE("store: issuing leaves a known device's state alone", "[store]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    REQUIRE(store.set_device(device_state("known-device", true, false, 42)) == StoreStatus::ok);
    REQUIRE(store.issue_token(new_token("wifi", "known-device")) == StoreStatus::ok);

    const auto device = store.get_device("known-device");
    REQUIRE(device.ok());
    CHECK(device.value.enrolled);
    CHECK_FALSE(device.value.compliant);
    CHECK(device.value.updated_at == 42);
}

TEMPLATE_LIST_TEST_CASE("store: set_device creates and then updates a device", "[store]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    CHECK(store.get_device("device-1").status == StoreStatus::not_found);

    REQUIRE(store.set_device(device_state("device-1", false, true, 100)) == StoreStatus::ok);
    auto device = store.get_device("device-1");
    REQUIRE(device.ok());
    CHECK_FALSE(device.value.enrolled);
    CHECK(device.value.compliant);
    CHECK(device.value.updated_at == 100);

    REQUIRE(store.set_device(device_state("device-1", true, false, 200)) == StoreStatus::ok);
    device = store.get_device("device-1");
    REQUIRE(device.ok());
    CHECK(device.value.enrolled);
    CHECK_FALSE(device.value.compliant);
    CHECK(device.value.updated_at == 200);

    CHECK(store.get_device("device-2").status == StoreStatus::not_found);
    CHECK(store.set_device(device_state("", true, true, 1)) == StoreStatus::invalid);
    CHECK(store.set_device(device_state(std::string("a\0b", 3), true, true, 1)) == StoreStatus::invalid);
    CHECK(store.get_device("").status == StoreStatus::invalid);
}

TEMPLATE_LIST_TEST_CASE("store: purge_expired deletes only tokens that expired before the cut-off", "[store]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    std::vector<NewToken> tokens;
    for (int64_t expiry : {kCreatedAt + 10, kCreatedAt + 20, kCreatedAt + 30, kCreatedAt + 40}) {
        NewToken token = new_token("wifi", "device-1");
        token.expires_at = expiry;
        REQUIRE(store.issue_token(token) == StoreStatus::ok);
        tokens.push_back(token);
    }
    REQUIRE(store.revoke_token(tokens[0].hash, kCreatedAt + 1) == StoreStatus::ok);

    // Expiring exactly at the cut-off is not "before" it: that token stays.
    const auto purged = store.purge_expired(kCreatedAt + 30);
    INFO(purged.message);
    REQUIRE(purged.ok());
    CHECK(purged.value == 2);
    CHECK(store.find_token(tokens[0].hash).status == StoreStatus::not_found);
    CHECK(store.find_token(tokens[1].hash).status == StoreStatus::not_found);
    CHECK(store.find_token(tokens[2].hash).ok());
    CHECK(store.find_token(tokens[3].hash).ok());

    const auto again = store.purge_expired(kCreatedAt + 30);
    REQUIRE(again.ok());
    CHECK(again.value == 0);
    // Devices outlive their tokens.
    CHECK(store.get_device("device-1").ok());
}

TEMPLATE_LIST_TEST_CASE("store: every access verdict is reachable", "[store][access]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    TestSession session(store);
    REQUIRE(session);

    const NewToken token = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);
    const int64_t before_expiry = kExpiresAt - 1;

    SECTION("allow, with and without the device check, naming profile and device") {
        for (bool check_device : {false, true}) {
            const AccessDecision decision = session.check(access_query(token.hash, before_expiry, check_device));
            CHECK(decision.verdict == AccessVerdict::allow);
            CHECK(decision.profile == "wifi");
            CHECK(decision.device_id == "device-1");
        }
    }
    SECTION("token_unknown, naming nothing") {
        const AccessDecision decision = session.check(access_query(fresh_hash(), before_expiry, true));
        CHECK(decision.verdict == AccessVerdict::token_unknown);
        CHECK(decision.profile.empty());
        CHECK(decision.device_id.empty());
    }
    SECTION("token_expired from the expiry second on") {
        for (int64_t now : {kExpiresAt, kExpiresAt + 1000}) {
            const AccessDecision decision = session.check(access_query(token.hash, now, false));
            CHECK(decision.verdict == AccessVerdict::token_expired);
            CHECK(decision.profile == "wifi");
            CHECK(decision.device_id == "device-1");
        }
    }
    SECTION("token_revoked, which wins over expiry") {
        REQUIRE(store.revoke_token(token.hash, kCreatedAt + 5) == StoreStatus::ok);
        for (int64_t now : {before_expiry, kExpiresAt + 1000}) {
            const AccessDecision decision = session.check(access_query(token.hash, now, true));
            CHECK(decision.verdict == AccessVerdict::token_revoked);
            CHECK(decision.profile == "wifi");
        }
    }
    SECTION("device_not_enrolled, which wins over non-compliance") {
        REQUIRE(store.set_device(device_state("device-1", false, false, kCreatedAt + 5)) == StoreStatus::ok);
        const AccessDecision decision = session.check(access_query(token.hash, before_expiry, true));
        CHECK(decision.verdict == AccessVerdict::device_not_enrolled);
        CHECK(decision.device_id == "device-1");
        // GetCACert and GetCACaps don't check the device.
        CHECK(session.check(access_query(token.hash, before_expiry, false)).verdict == AccessVerdict::allow);
    }
    SECTION("device_not_compliant") {
        REQUIRE(store.set_device(device_state("device-1", true, false, kCreatedAt + 5)) == StoreStatus::ok);
        const AccessDecision decision = session.check(access_query(token.hash, before_expiry, true));
        CHECK(decision.verdict == AccessVerdict::device_not_compliant);
        CHECK(decision.profile == "wifi");
        CHECK(session.check(access_query(token.hash, before_expiry, false)).verdict == AccessVerdict::allow);
    }
    SECTION("a device made compliant again is allowed again") {
        REQUIRE(store.set_device(device_state("device-1", true, false, kCreatedAt + 5)) == StoreStatus::ok);
        REQUIRE(session.check(access_query(token.hash, before_expiry, true)).verdict ==
                AccessVerdict::device_not_compliant);
        REQUIRE(store.set_device(device_state("device-1", true, true, kCreatedAt + 6)) == StoreStatus::ok);
        CHECK(session.check(access_query(token.hash, before_expiry, true)).verdict == AccessVerdict::allow);
    }
    SECTION("store_unavailable with a message when the backend fails") {
        fixture.break_backend();
        const AccessDecision decision = session.check(access_query(token.hash, before_expiry, true));
        CHECK(decision.verdict == AccessVerdict::store_unavailable);
        CHECK_FALSE(decision.message.empty());
        // A session opened after the failure fails the same way.
        TestSession late_session(store);
        REQUIRE(late_session);
        CHECK(late_session.check(access_query(token.hash, before_expiry, false)).verdict ==
              AccessVerdict::store_unavailable);
    }
}

TEMPLATE_LIST_TEST_CASE("store: the control plane reports unavailable when the backend fails", "[store]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    const NewToken token = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);
    fixture.break_backend();

    CHECK(store.issue_token(new_token("wifi", "device-2")) == StoreStatus::unavailable);
    const auto found = store.find_token(token.hash);
    CHECK(found.status == StoreStatus::unavailable);
    CHECK_FALSE(found.message.empty());
    CHECK(store.revoke_token(token.hash, kCreatedAt) == StoreStatus::unavailable);
    CHECK(store.set_device(device_state("device-1", true, true, 1)) == StoreStatus::unavailable);
    CHECK(store.get_device("device-1").status == StoreStatus::unavailable);
    CHECK(store.purge_expired(kExpiresAt).status == StoreStatus::unavailable);
}

TEMPLATE_LIST_TEST_CASE("store: a session sees control-plane writes made after it opened", "[store][access]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    TestSession session(store);
    REQUIRE(session);
    const NewToken token = new_token("wifi", "device-1");
    const AccessQuery query = access_query(token.hash, kCreatedAt, true);

    CHECK(session.check(query).verdict == AccessVerdict::token_unknown);
    REQUIRE(store.issue_token(token) == StoreStatus::ok);
    CHECK(session.check(query).verdict == AccessVerdict::allow);
    REQUIRE(store.revoke_token(token.hash, kCreatedAt + 1) == StoreStatus::ok);
    CHECK(session.check(query).verdict == AccessVerdict::token_revoked);
    REQUIRE(store.purge_expired(kExpiresAt + 1).ok());
    CHECK(session.check(query).verdict == AccessVerdict::token_unknown);
}

namespace {

// Where a token is in the life the writer below gives it; a reader must never see it go back.
int lifecycle_stage(AccessVerdict verdict) {
    switch (verdict) {
        case AccessVerdict::token_unknown: return 0;         // not issued yet
        case AccessVerdict::allow: return 1;                 // issued (device registered compliant)
        case AccessVerdict::device_not_compliant: return 2;  // device marked non-compliant
        case AccessVerdict::token_revoked: return 3;         // revoked
        default: return -1;                                  // never valid in this test
    }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("store: sessions on other threads read consistent answers while the control plane writes",
                        "[store][access][threads]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    constexpr int kTokens = 150;
    constexpr int kReaders = 2;
    std::vector<NewToken> tokens;
    for (int i = 0; i < kTokens; ++i) {
        tokens.push_back(new_token("profile-" + std::to_string(i), "device-" + std::to_string(i)));
    }

    std::atomic<bool> writer_done{false};
    // Catch2 assertions are not thread-safe: readers collect failures and the test checks them after join.
    std::vector<std::vector<std::string>> reader_failures(kReaders);
    std::vector<int> reader_rounds(kReaders, 0);

    auto read_until_writer_done = [&](int reader) {
        TestSession session(store);
        std::vector<std::string>& failures = reader_failures[reader];
        if (!session) {
            failures.push_back("open_session returned null");
            return;
        }
        std::vector<int> seen_stage(kTokens, 0);
        bool last_round = false;
        while (!last_round && failures.empty()) {
            // One more full round after the writer has finished, so the final state is checked.
            last_round = writer_done.load();
            for (int i = 0; i < kTokens; ++i) {
                const std::optional<AccessDecision> answer =
                    session.try_check(access_query(tokens[i].hash, kCreatedAt, true));
                const std::string where = "token " + std::to_string(i) + ": ";
                if (!answer) {
                    failures.push_back(where + "no answer, or more than one");
                    break;
                }
                const AccessDecision& decision = *answer;
                const int stage = lifecycle_stage(decision.verdict);
                if (stage < 0) {
                    failures.push_back(where + "unexpected verdict " + to_string(decision.verdict) + " " +
                                       decision.message);
                } else if (stage < seen_stage[i]) {
                    failures.push_back(where + "went back from stage " + std::to_string(seen_stage[i]) + " to " +
                                       std::to_string(stage));
                } else if (stage > 0 &&
                           (decision.profile != tokens[i].profile || decision.device_id != tokens[i].device_id)) {
                    failures.push_back(where + "wrong profile or device: " + decision.profile + " " +
                                       decision.device_id);
                } else if (last_round && stage != 3) {
                    failures.push_back(where + "not revoked after the writer finished");
                }
                if (stage > seen_stage[i]) seen_stage[i] = stage;
            }
            ++reader_rounds[reader];
        }
    };

    std::vector<std::thread> readers;
    for (int r = 0; r < kReaders; ++r) readers.emplace_back(read_until_writer_done, r);

    // The writer: a bounded number of writes, each moving one token one stage on.
    std::vector<std::string> writer_failures;
    for (int i = 0; i < kTokens; ++i) {
        if (store.issue_token(tokens[i]) != StoreStatus::ok) writer_failures.push_back("issue " + std::to_string(i));
        if (store.set_device(device_state(tokens[i].device_id, true, false, kCreatedAt)) != StoreStatus::ok) {
            writer_failures.push_back("set_device " + std::to_string(i));
        }
        if (store.revoke_token(tokens[i].hash, kCreatedAt) != StoreStatus::ok) {
            writer_failures.push_back("revoke " + std::to_string(i));
        }
    }
    writer_done.store(true);
    for (std::thread& reader : readers) reader.join();

    {
        INFO("first writer failure: " << (writer_failures.empty() ? "" : writer_failures.front()));
        CHECK(writer_failures.empty());
    }
    for (int r = 0; r < kReaders; ++r) {
        INFO("reader " << r << " after " << reader_rounds[r]
                       << " rounds; first failure: " << (reader_failures[r].empty() ? "" : reader_failures[r].front()));
        CHECK(reader_failures[r].empty());
    }
}

TEMPLATE_LIST_TEST_CASE("store: a token binds to its first transaction, is consumed by success, and is done",
                        "[store][binding]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    TestSession session(store);
    REQUIRE(session);
    const NewToken token = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);

    CHECK(session.bind(bind_query(token.hash, "tx-A")).verdict == BindVerdict::bound);
    // The client resends its PKCSReq after PENDING, or polls: same transaction, allowed.
    CHECK(session.bind(bind_query(token.hash, "tx-A")).verdict == BindVerdict::already_bound);
    CHECK(session.bind(bind_query(token.hash, "tx-A", /*may_bind=*/false)).verdict == BindVerdict::already_bound);
    // A second enrollment (new key, new transaction) on the same token is refused.
    CHECK(session.bind(bind_query(token.hash, "tx-B")).verdict == BindVerdict::transaction_mismatch);
    CHECK(session.bind(bind_query(token.hash, "tx-B", false)).verdict == BindVerdict::transaction_mismatch);
    auto found = store.find_token(token.hash);
    REQUIRE(found.ok());
    CHECK(found.value.transaction_id == "tx-A");
    CHECK_FALSE(found.value.consumed);
    CHECK(found.value.consumed_at == 0);

    CHECK(session.finish(finish_query(token.hash, "tx-B", TransactionEnd::release)).status == StoreStatus::conflict);
    CHECK(session.finish(finish_query(token.hash, "tx-B", TransactionEnd::consume)).status == StoreStatus::conflict);
    const FinishResult consumed = session.finish(finish_query(token.hash, "tx-A", TransactionEnd::consume));
    INFO(consumed.message);
    CHECK(consumed.status == StoreStatus::ok);
    // The same CertRep seen twice (a poll answered again, later) changes nothing, not even when.
    FinishQuery seen_again = finish_query(token.hash, "tx-A", TransactionEnd::consume);
    seen_again.now += 5;
    CHECK(session.finish(seen_again).status == StoreStatus::ok);
    found = store.find_token(token.hash);
    REQUIRE(found.ok());
    CHECK(found.value.consumed);
    CHECK(found.value.consumed_at == finish_query(token.hash, "tx-A", TransactionEnd::consume).now);
    CHECK(found.value.transaction_id == "tx-A");

    for (const char* transaction : {"tx-A", "tx-C"}) {
        CHECK(session.bind(bind_query(token.hash, transaction)).verdict == BindVerdict::token_consumed);
        CHECK(session.bind(bind_query(token.hash, transaction, false)).verdict == BindVerdict::token_consumed);
    }
    CHECK(session.finish(finish_query(token.hash, "tx-A", TransactionEnd::release)).status == StoreStatus::conflict);
    // Access checks don't look at bindings: the CA certificate stays fetchable.
    CHECK(session.check(access_query(token.hash, kCreatedAt + 3, false)).verdict == AccessVerdict::allow);
}

TEMPLATE_LIST_TEST_CASE("store: a failed transaction releases the token for another try", "[store][binding]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    TestSession session(store);
    REQUIRE(session);
    const NewToken token = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);

    // Nothing bound yet: a poll binds nothing, a success can't be recorded, a release is a no-op.
    CHECK(session.bind(bind_query(token.hash, "tx-A", false)).verdict == BindVerdict::not_bound);
    CHECK(session.finish(finish_query(token.hash, "tx-A", TransactionEnd::consume)).status == StoreStatus::conflict);
    CHECK(session.finish(finish_query(token.hash, "tx-A", TransactionEnd::release)).status == StoreStatus::ok);
    CHECK(store.find_token(token.hash).value.transaction_id.empty());

    REQUIRE(session.bind(bind_query(token.hash, "tx-A")).verdict == BindVerdict::bound);
    CHECK(session.finish(finish_query(token.hash, "tx-A", TransactionEnd::release)).status == StoreStatus::ok);
    CHECK(session.finish(finish_query(token.hash, "tx-A", TransactionEnd::release)).status == StoreStatus::ok);
    const auto found = store.find_token(token.hash);
    REQUIRE(found.ok());
    CHECK(found.value.transaction_id.empty());
    CHECK_FALSE(found.value.consumed);

    CHECK(session.bind(bind_query(token.hash, "tx-B")).verdict == BindVerdict::bound);
    CHECK(session.bind(bind_query(token.hash, "tx-A")).verdict == BindVerdict::transaction_mismatch);
}

TEMPLATE_LIST_TEST_CASE("store: binding refuses unusable tokens and malformed transaction ids", "[store][binding]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    TestSession session(store);
    REQUIRE(session);
    const NewToken token = new_token("wifi", "device-1");
    const NewToken revoked = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);
    REQUIRE(store.issue_token(revoked) == StoreStatus::ok);
    REQUIRE(store.revoke_token(revoked.hash, kCreatedAt + 1) == StoreStatus::ok);

    const TokenHash unknown = fresh_hash();
    CHECK(session.bind(bind_query(unknown, "tx")).verdict == BindVerdict::token_unknown);
    CHECK(session.bind(bind_query(unknown, "tx", false)).verdict == BindVerdict::token_unknown);
    CHECK(session.finish(finish_query(unknown, "tx", TransactionEnd::consume)).status == StoreStatus::not_found);
    CHECK(session.finish(finish_query(unknown, "tx", TransactionEnd::release)).status == StoreStatus::not_found);
    CHECK(session.bind(bind_query(revoked.hash, "tx")).verdict == BindVerdict::token_revoked);
    for (int64_t now : {kExpiresAt, kExpiresAt + 100}) {
        CHECK(session.bind(bind_query(token.hash, "tx", true, now)).verdict == BindVerdict::token_expired);
    }

    std::string invalid;
    SECTION("empty") { invalid = ""; }
    SECTION("too long") { invalid.assign(kMaxTransactionIdBytes + 1, 't'); }
    SECTION("NUL byte") { invalid = std::string("tx\0id", 5); }
    const BindDecision refused = session.bind(bind_query(token.hash, invalid));
    CHECK(refused.verdict == BindVerdict::transaction_invalid);
    CHECK_FALSE(refused.message.empty());
    CHECK(session.finish(finish_query(token.hash, invalid, TransactionEnd::release)).status == StoreStatus::invalid);
    CHECK(store.find_token(token.hash).value.transaction_id.empty());

    // The longest allowed id, with bytes SQL would choke on if it were spliced in, is stored as it is.
    std::string longest(kMaxTransactionIdBytes, 'x');
    longest.replace(0, 12, "'; DROP --\"\\");
    CHECK(session.bind(bind_query(token.hash, longest)).verdict == BindVerdict::bound);
    CHECK(store.find_token(token.hash).value.transaction_id == longest);
}

TEMPLATE_LIST_TEST_CASE("store: the blocking forms give the sessions' answers", "[store][binding][access]",
                        StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    const NewToken token = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);

    const AccessDecision allowed = store.check_access(access_query(token.hash, kCreatedAt + 1, true));
    CHECK(allowed.verdict == AccessVerdict::allow);
    CHECK(allowed.profile == "wifi");
    CHECK(allowed.device_id == "device-1");
    CHECK(allowed.expires_at == kExpiresAt);
    CHECK(store.check_access(access_query(fresh_hash(), kCreatedAt + 1, true)).verdict == AccessVerdict::token_unknown);
    REQUIRE(store.set_device(device_state("device-1", true, false, kCreatedAt + 1)) == StoreStatus::ok);
    CHECK(store.check_access(access_query(token.hash, kCreatedAt + 1, true)).verdict ==
          AccessVerdict::device_not_compliant);

    CHECK(store.bind_transaction(bind_query(token.hash, "tx-A")).verdict == BindVerdict::bound);
    CHECK(store.bind_transaction(bind_query(token.hash, "tx-A")).verdict == BindVerdict::already_bound);
    CHECK(store.bind_transaction(bind_query(token.hash, "tx-B")).verdict == BindVerdict::transaction_mismatch);
    CHECK(store.finish_transaction(finish_query(token.hash, "tx-A", TransactionEnd::release)).status ==
          StoreStatus::ok);
    CHECK(store.bind_transaction(bind_query(token.hash, "tx-B")).verdict == BindVerdict::bound);
    CHECK(store.finish_transaction(finish_query(token.hash, "tx-B", TransactionEnd::consume)).status ==
          StoreStatus::ok);
    CHECK(store.bind_transaction(bind_query(token.hash, "tx-B")).verdict == BindVerdict::token_consumed);
}

TEMPLATE_LIST_TEST_CASE("store: binding reports an unavailable backend", "[store][binding]", StoreBackendFixtures) {
    TestType fixture;
    EnrollmentStore& store = fixture.store();
    TestSession session(store);
    REQUIRE(session);
    const NewToken token = new_token("wifi", "device-1");
    REQUIRE(store.issue_token(token) == StoreStatus::ok);
    fixture.break_backend();

    const BindDecision bound = session.bind(bind_query(token.hash, "tx-A"));
    CHECK(bound.verdict == BindVerdict::store_unavailable);
    CHECK_FALSE(bound.message.empty());
    CHECK(session.finish(finish_query(token.hash, "tx-A", TransactionEnd::consume)).status == StoreStatus::unavailable);
    CHECK(store.bind_transaction(bind_query(token.hash, "tx-A")).verdict == BindVerdict::store_unavailable);
    CHECK(store.finish_transaction(finish_query(token.hash, "tx-A", TransactionEnd::release)).status ==
          StoreStatus::unavailable);
}

TEMPLATE_LIST_TEST_CASE("store: 8 threads racing to bind one token to different transactions: exactly one wins",
                        "[store][binding][threads]", StoreBackendFixtures) {
    TestType fixture;
    constexpr int kRacers = 8;
    constexpr int kTokens = 4;  // a few races, each on a fresh token

    // Each racer binds through its own store (like separate proxy processes, each with its
    // own connections) or through its own session of one store (like the workers of one proxy).
    bool separate_stores = false;
    SECTION("separate stores") { separate_stores = true; }
    SECTION("sessions of one store") { separate_stores = false; }

    std::vector<std::unique_ptr<EnrollmentStore>> peers;
    if (separate_stores) {
        for (int i = 0; i < kRacers; ++i) peers.push_back(fixture.open_peer());
    }
    for (int round = 0; round < kTokens; ++round) {
        const NewToken token = new_token("wifi", "device-" + std::to_string(round));
        REQUIRE(fixture.store().issue_token(token) == StoreStatus::ok);

        std::vector<std::optional<BindDecision>> answers(kRacers);
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> racers;
        for (int i = 0; i < kRacers; ++i) {
            racers.emplace_back([&, i] {
                const BindQuery query = bind_query(token.hash, "tx-" + std::to_string(i));
                if (separate_stores) {
                    ++ready;
                    while (!go.load()) std::this_thread::yield();
                    answers[i] = peers[i]->bind_transaction(query);
                } else {
                    TestSession session(fixture.store());
                    ++ready;
                    while (!go.load()) std::this_thread::yield();
                    answers[i] = session.try_bind(query);
                }
            });
        }
        while (ready.load() < kRacers) std::this_thread::yield();
        go.store(true);
        for (std::thread& racer : racers) racer.join();

        int winners = 0;
        int winner = -1;
        for (int i = 0; i < kRacers; ++i) {
            INFO("round " << round << ", racer " << i);
            REQUIRE(answers[i]);
            INFO(to_string(answers[i]->verdict) << " " << answers[i]->message);
            if (answers[i]->verdict == BindVerdict::bound) {
                ++winners;
                winner = i;
            } else {
                CHECK(answers[i]->verdict == BindVerdict::transaction_mismatch);
            }
        }
        CHECK(winners == 1);
        const auto found = fixture.store().find_token(token.hash);
        REQUIRE(found.ok());
        CHECK(found.value.transaction_id == "tx-" + std::to_string(winner));
    }
}

}  // namespace scepproxy::token::test
