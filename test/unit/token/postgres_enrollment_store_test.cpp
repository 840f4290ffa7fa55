// Tests specific to the PostgreSQL store: schema versions, concurrent starts, lost connections, timeouts, asynchronous sessions.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test/unit/token/postgres_test_database.h"
#include "test/unit/token/test_session.h"
#include "token/postgres/pg_schema.h"
#include "token/postgres/postgres_enrollment_store.h"

namespace scepproxy::token::postgres {
namespace {

using test::PostgresTestDatabase;
using test::RecordingCallback;
using test::TestSession;
using namespace std::chrono_literals;

constexpr int64_t kNow = 1'700'000'000;

NewToken sample_token(const std::string& device = "device-1") {
    auto token = EnrollmentToken::generate();
    REQUIRE(token);
    return NewToken{token->hash(), "wifi", device, kNow, kNow + 3600};
}

AccessQuery query_for(const TokenHash& hash) {
    AccessQuery query;
    query.token_hash = hash;
    query.check_device = true;
    query.now = kNow + 1;
    return query;
}

std::unique_ptr<EnrollmentStore> open_store(const PostgresStoreOptions& options) {
    auto opened = open_postgres_enrollment_store(options);
    INFO(opened.message);
    REQUIRE(opened.ok());
    return std::move(opened.value);
}

// Holds an exclusive lock on the tokens table from its own connection, so the store's
// statements on it wait: a stand-in for a server that stops answering.
class TableLock {
public:
    explicit TableLock(const PostgresTestDatabase& database) : conn_(PQconnectdb(database.conninfo().c_str())) {
        REQUIRE(PQstatus(conn_) == CONNECTION_OK);
        PGresult* result = PQexec(conn_, "BEGIN; LOCK TABLE scepproxy_tokens IN ACCESS EXCLUSIVE MODE");
        const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
        PQclear(result);
        REQUIRE(ok);
    }
    ~TableLock() { release(); }
    void release() {
        if (!conn_) return;
        PQclear(PQexec(conn_, "ROLLBACK"));
        PQfinish(conn_);
        conn_ = nullptr;
    }

private:
    PGconn* conn_;
};

}  // namespace

TEST_CASE("postgres store: a new schema is migrated to the newest version, once", "[postgres]") {
    PostgresTestDatabase database;
    {
        auto store = open_store(database.store_options());
        REQUIRE(store->issue_token(sample_token()) == StoreStatus::ok);
    }
    CHECK(database.query_text("SELECT version FROM scepproxy_schema_version") == std::to_string(pg_schema_version()));
    CHECK(database.query_text("SELECT count(*) FROM scepproxy_schema_version") == "1");
    // Reopening keeps the data and changes nothing.
    auto reopened = open_store(database.store_options());
    CHECK(database.query_text("SELECT count(*) FROM scepproxy_tokens") == "1");
    CHECK(database.query_text("SELECT version FROM scepproxy_schema_version") == std::to_string(pg_schema_version()));
}

TEST_CASE("postgres store: proxies starting together on an empty database all succeed", "[postgres]") {
    PostgresTestDatabase database;
    constexpr int kProxies = 4;
    std::vector<std::string> failures(kProxies);
    std::atomic<bool> go{false};
    std::vector<std::thread> proxies;
    for (int i = 0; i < kProxies; ++i) {
        proxies.emplace_back([&, i] {
            while (!go.load()) std::this_thread::yield();
            auto opened = open_postgres_enrollment_store(database.store_options(1));
            if (!opened.ok()) failures[i] = opened.message;
        });
    }
    go = true;
    for (std::thread& proxy : proxies) proxy.join();
    for (int i = 0; i < kProxies; ++i) {
        INFO("proxy " << i);
        CHECK(failures[i].empty());
    }
    CHECK(database.query_text("SELECT count(*) FROM scepproxy_schema_version") == "1");
}

TEST_CASE("postgres store: a database from a newer scepproxy is refused and left alone", "[postgres]") {
    PostgresTestDatabase database;
    database.execute(
        "CREATE TABLE scepproxy_schema_version (version integer NOT NULL); "
        "INSERT INTO scepproxy_schema_version VALUES (" +
        std::to_string(pg_schema_version() + 1) + ")");
    const auto opened = open_postgres_enrollment_store(database.store_options());
    CHECK(opened.status == StoreStatus::unavailable);
    CHECK_THAT(opened.message, Catch::Contains("newer"));
    CHECK(database.query_text("SELECT count(*) FROM information_schema.tables WHERE table_schema = '" +
                              database.schema() + "' AND table_name = 'scepproxy_tokens'") == "0");
}

TEST_CASE("postgres store: a migration that fails leaves no half-applied schema", "[postgres]") {
    PostgresTestDatabase database;
    // Something already named like migration 1's second table.
    database.execute("CREATE TABLE scepproxy_tokens (something_else text)");
    const auto opened = open_postgres_enrollment_store(database.store_options());
    CHECK(opened.status == StoreStatus::unavailable);
    CHECK_THAT(opened.message, Catch::Contains("version 1"));
    CHECK(database.query_text("SELECT version FROM scepproxy_schema_version") == "0");
    // scepproxy_devices came first in migration 1: rolled back with the rest.
    CHECK(database.query_text("SELECT count(*) FROM information_schema.tables WHERE table_schema = '" +
                              database.schema() + "' AND table_name = 'scepproxy_devices'") == "0");
}

TEST_CASE("postgres store: connections the server dropped are replaced without a failed request", "[postgres]") {
    PostgresTestDatabase database;
    PostgresStoreOptions options = database.store_options(2);
    // Our own application_name, so only this test's connections are terminated.
    const std::string name = "scepproxy-" + database.schema();
    options.conninfo += " application_name=" + name;
    auto store = open_store(options);
    const NewToken token = sample_token();
    REQUIRE(store->issue_token(token) == StoreStatus::ok);
    TestSession session(*store);
    REQUIRE(session.check(query_for(token.hash)).verdict == AccessVerdict::allow);

    // What a server restart or an administrator does to every connection.
    database.query_text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '" +
                        name + "'");
    const AccessDecision after = session.check(query_for(token.hash));
    INFO(after.message);
    CHECK(after.verdict == AccessVerdict::allow);
    CHECK(store->find_token(token.hash).ok());
    CHECK(store->revoke_token(token.hash, kNow) == StoreStatus::ok);
}

TEST_CASE("postgres store: a server that doesn't answer costs at most the timeout, then works again", "[postgres]") {
    PostgresTestDatabase database;
    PostgresStoreOptions options = database.store_options(2);
    options.timeout = 300ms;
    auto store = open_store(options);
    const NewToken token = sample_token();
    REQUIRE(store->issue_token(token) == StoreStatus::ok);
    TestSession session(*store);

    TableLock lock(database);
    const auto started = std::chrono::steady_clock::now();
    const AccessDecision stalled = session.check(query_for(token.hash));
    const auto waited = std::chrono::steady_clock::now() - started;
    CHECK(stalled.verdict == AccessVerdict::store_unavailable);
    CHECK_THAT(stalled.message, Catch::Contains("timed out"));
    // The timeout bounds the wait (the margin is for a loaded machine, not for the logic).
    CHECK(waited < options.timeout + 5s);
    CHECK(store->revoke_token(token.hash, kNow) == StoreStatus::unavailable);

    lock.release();
    const AccessDecision recovered = session.check(query_for(token.hash));
    INFO(recovered.message);
    CHECK(recovered.verdict == AccessVerdict::allow);
}

TEST_CASE("postgres store: sessions answer through the loop, and never after cancel", "[postgres]") {
    PostgresTestDatabase database;
    auto store = open_store(database.store_options(1));
    const NewToken token = sample_token();
    REQUIRE(store->issue_token(token) == StoreStatus::ok);
    TestSession session(*store);

    RecordingCallback answered;
    session.session().check_access(query_for(token.hash), answered);
    CHECK(answered.calls == 0);  // a network backend never answers inline
    REQUIRE(session.loop().run_until([&] { return answered.calls > 0; }));
    CHECK(answered.access.verdict == AccessVerdict::allow);

    // Held at the lock, cancelled, then let go: the answer is posted but not delivered.
    auto lock = std::make_unique<TableLock>(database);
    RecordingCallback cancelled;
    const size_t posted_before = session.loop().posted();
    session.session().check_access(query_for(token.hash), cancelled);
    session.session().cancel(cancelled);
    lock.reset();
    REQUIRE(session.loop().run_until([&] { return session.loop().posted() > posted_before; }));
    session.loop().run_pending();
    CHECK(cancelled.calls == 0);
}

TEST_CASE("postgres store: a session destroyed while its query runs posts nothing afterwards", "[postgres]") {
    PostgresTestDatabase database;
    auto store = open_store(database.store_options(1));
    const NewToken token = sample_token();
    REQUIRE(store->issue_token(token) == StoreStatus::ok);
    std::atomic<int> posts{0};
    auto lock = std::make_unique<TableLock>(database);
    RecordingCallback callback;
    {
        auto session = store->open_session([&](std::function<void()>) { ++posts; });
        session->check_access(query_for(token.hash), callback);
    }
    lock.reset();
    // The store's only connection is free again once that query is done: this waits for it.
    CHECK(store->find_token(token.hash).ok());
    CHECK(posts.load() == 0);
    CHECK(callback.calls == 0);
}

TEST_CASE("postgres store: text the database can't hold is invalid, not a failure of the store", "[postgres]") {
    PostgresTestDatabase database;
    auto store = open_store(database.store_options());
    NewToken token = sample_token("device-\xff\xfe");
    CHECK(store->issue_token(token) == StoreStatus::invalid);
    CHECK(store->set_device(DeviceRecord{"bad-\xc3", true, true, kNow}) == StoreStatus::invalid);
    CHECK(store->get_device("bad-\xc3").status == StoreStatus::not_found);
    // The store still works.
    CHECK(store->issue_token(sample_token()) == StoreStatus::ok);
}

TEST_CASE("postgres store: conninfo files are read without their surrounding white space", "[postgres]") {
    const std::string path = "/tmp/scepproxy-conninfo-test-" + std::to_string(::getpid());
    {
        std::ofstream file(path);
        file << "\n  host=/tmp dbname=x  \n\n";
    }
    const auto read = read_conninfo_file(path);
    std::remove(path.c_str());
    REQUIRE(read.ok());
    CHECK(read.value == "host=/tmp dbname=x");
}

}  // namespace scepproxy::token::postgres
