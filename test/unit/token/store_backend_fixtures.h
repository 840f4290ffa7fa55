// The backends the EnrollmentStore conformance suite runs against, one fixture type each.
//
// A fixture type provides:
//   static constexpr const char* backend_name;      what store().backend_name() must say
//   EnrollmentStore& store();                        a fresh, empty store of that backend
//   AccessDecision check(EnrollmentSession&, const AccessQuery&);
//                                                    runs one access check to its answer
//   void break_backend();                            from now on the backend fails the way a
//                                                    lost database does (store_unavailable)
// A new backend (postgres, webhook) adds a fixture here and to StoreBackendFixtures.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <tuple>

#include "test/unit/token/temp_directory.h"
#include "token/enrollment_store.h"
#include "token/sqlite/sqlite_connection.h"
#include "token/sqlite/sqlite_enrollment_store.h"

namespace scepproxy::token::test {

// Records what a session answered, and how many times.
class RecordingCallback final : public AccessCallback {
public:
    void on_access_decided(const AccessDecision& decision) override {
        ++calls;
        last = decision;
    }
    int calls = 0;
    AccessDecision last;
};

// For backends that answer before check_access returns (embedded ones): exactly once, inline.
inline AccessDecision check_inline(EnrollmentSession& session, const AccessQuery& query) {
    RecordingCallback callback;
    session.check_access(query, callback);
    REQUIRE(callback.calls == 1);
    return callback.last;
}

class SqliteStoreFixture {
public:
    static constexpr const char* backend_name = "sqlite";

    SqliteStoreFixture() : path_(directory_.file("enrollments.db")) {
        sqlite::SqliteStoreOptions options;
        options.path = path_;
        auto opened = sqlite::open_sqlite_enrollment_store(options);
        INFO(opened.message);
        REQUIRE(opened.ok());
        store_ = std::move(opened.value);
    }

    EnrollmentStore& store() { return *store_; }
    const std::string& path() const { return path_; }

    AccessDecision check(EnrollmentSession& session, const AccessQuery& query) {
        return check_inline(session, query);
    }

    // Drops the tables behind the store's back: every statement then fails ("no such table").
    void break_backend() {
        std::string error;
        auto db = sqlite::SqliteConnection::open(path_, SQLITE_OPEN_READWRITE, std::chrono::seconds(5), error);
        INFO(error);
        REQUIRE(db);
        REQUIRE(db->exec("DROP TABLE tokens; DROP TABLE devices;") == SQLITE_OK);
    }

private:
    TempDirectory directory_;
    std::string path_;
    std::unique_ptr<EnrollmentStore> store_;
};

using StoreBackendFixtures = std::tuple<SqliteStoreFixture>;

}  // namespace scepproxy::token::test
