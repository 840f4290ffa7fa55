// The backends the EnrollmentStore conformance suite runs against, one fixture type each.
//
// A fixture type provides:
//   static constexpr const char* backend_name;      what store().backend_name() must say
//   EnrollmentStore& store();                        a fresh, empty store of that backend
//   std::unique_ptr<EnrollmentStore> open_peer();    another store on the same data, as a
//                                                    second proxy process would open it
//   void break_backend();                            from now on the backend fails the way a
//                                                    lost database does (store_unavailable)
// Sessions are driven through TestSession (test_session.h), which plays the worker's event loop.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <tuple>

#include "test/unit/token/fake_mdm_webhook.h"
#include "test/unit/token/postgres_test_database.h"
#include "test/unit/token/temp_directory.h"
#include "test/unit/token/test_session.h"
#include "token/enrollment_store.h"
#include "token/postgres/postgres_enrollment_store.h"
#include "token/sqlite/sqlite_connection.h"
#include "token/sqlite/sqlite_enrollment_store.h"
#include "token/webhook/webhook_enrollment_store.h"

namespace scepproxy::token::test {

// Drops the tables behind the store's back: every statement then fails ("no such table").
inline void drop_sqlite_tables(const std::string& path) {
    std::string error;
    auto db = sqlite::SqliteConnection::open(path, SQLITE_OPEN_READWRITE, std::chrono::seconds(5), error);
    INFO(error);
    REQUIRE(db);
    REQUIRE(db->exec("DROP TABLE tokens; DROP TABLE devices;") == SQLITE_OK);
}

template <class Opened>
std::unique_ptr<EnrollmentStore> required_store(Opened opened) {
    INFO(opened.message);
    REQUIRE(opened.ok());
    return std::move(opened.value);
}

class SqliteStoreFixture {
public:
    static constexpr const char* backend_name = "sqlite";

    SqliteStoreFixture() : path_(directory_.file("enrollments.db")) { store_ = open_peer(); }

    EnrollmentStore& store() { return *store_; }
    const std::string& path() const { return path_; }
    std::unique_ptr<EnrollmentStore> open_peer() {
        sqlite::SqliteStoreOptions options;
        options.path = path_;
        return required_store(sqlite::open_sqlite_enrollment_store(options));
    }
    void break_backend() { drop_sqlite_tables(path_); }

private:
    TempDirectory directory_;
    std::string path_;
    std::unique_ptr<EnrollmentStore> store_;
};

// A PostgreSQL schema of its own on the test server (postgres_test_database.h).
class PostgresStoreFixture {
public:
    static constexpr const char* backend_name = "postgres";

    PostgresStoreFixture() { store_ = open_peer(); }

    EnrollmentStore& store() { return *store_; }
    PostgresTestDatabase& database() { return database_; }
    std::unique_ptr<EnrollmentStore> open_peer(unsigned pool_size = 4) {
        return required_store(postgres::open_postgres_enrollment_store(database_.store_options(pool_size)));
    }
    void break_backend() { database_.execute("DROP TABLE scepproxy_tokens; DROP TABLE scepproxy_devices;"); }

private:
    PostgresTestDatabase database_;
    std::unique_ptr<EnrollmentStore> store_;
};

// Tokens in a local SQLite file; a fake MDM that allows every device.
class WebhookStoreFixture {
public:
    static constexpr const char* backend_name = "webhook";

    WebhookStoreFixture() : path_(directory_.file("enrollments.db")) { store_ = open_peer(); }

    EnrollmentStore& store() { return *store_; }
    FakeMdmWebhook& mdm() { return mdm_; }
    std::unique_ptr<EnrollmentStore> open_peer() {
        webhook::WebhookStoreOptions options;
        options.local.path = path_;
        options.webhook.url = mdm_.url();
        options.webhook.bearer_token = FakeMdmWebhook::kBearerToken;
        options.webhook.timeout = std::chrono::seconds(5);
        return required_store(webhook::open_webhook_enrollment_store(options));
    }
    // Both halves fail: the local database loses its tables and the MDM stops answering.
    void break_backend() {
        drop_sqlite_tables(path_);
        mdm_.stop();
    }

private:
    TempDirectory directory_;
    std::string path_;
    FakeMdmWebhook mdm_;
    std::unique_ptr<EnrollmentStore> store_;
};

using StoreBackendFixtures = std::tuple<SqliteStoreFixture, PostgresStoreFixture, WebhookStoreFixture>;

}  // namespace scepproxy::token::test
