// Tests specific to the SQLite store: file handling, WAL, schema versions and migrations.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <fstream>
#include <string>

#include "test/unit/token/temp_directory.h"
#include "test/unit/token/test_session.h"
#include "token/sqlite/sqlite_connection.h"
#include "token/sqlite/sqlite_enrollment_store.h"
#include "token/sqlite/sqlite_schema.h"

namespace scepproxy::token::sqlite {
namespace {

using test::TempDirectory;

StoreResult<std::unique_ptr<EnrollmentStore>> open_store(const std::string& path) {
    SqliteStoreOptions options;
    options.path = path;
    return open_sqlite_enrollment_store(options);
}

// A plain connection to look at or tamper with the file behind the store's back.
SqliteConnection raw_connection(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    std::string error;
    auto db = SqliteConnection::open(path, flags, std::chrono::seconds(5), error);
    INFO(error);
    REQUIRE(db);
    return std::move(*db);
}

std::string query_text(SqliteConnection& db, const char* sql) {
    SqliteStatement statement;
    REQUIRE(db.prepare(sql, statement) == SQLITE_OK);
    REQUIRE(statement.step() == SQLITE_ROW);
    return statement.column_text(0);
}

int64_t user_version(const std::string& path) {
    SqliteConnection db = raw_connection(path, SQLITE_OPEN_READONLY);
    const auto version = db.query_int64("PRAGMA user_version");
    REQUIRE(version);
    return *version;
}

NewToken sample_token() {
    auto token = EnrollmentToken::generate();
    REQUIRE(token);
    NewToken issued;
    issued.hash = token->hash();
    issued.profile = "wifi";
    issued.device_id = "device-1";
    issued.created_at = 1000;
    issued.expires_at = 2000;
    return issued;
}

// The SQLite session answers inline (a local file): it must never need the loop.
std::unique_ptr<EnrollmentSession> inline_session(EnrollmentStore& store) {
    return store.open_session([](std::function<void()>) { FAIL("the sqlite session posted to the loop"); });
}

AccessVerdict check_now(EnrollmentSession& session, const TokenHash& hash, int64_t now) {
    AccessQuery query;
    query.token_hash = hash;
    query.check_device = true;
    query.now = now;
    test::RecordingCallback callback;
    session.check_access(query, callback);
    REQUIRE(callback.calls == 1);
    return callback.access.verdict;
}

}  // namespace

TEST_CASE("sqlite store: a new file is created in WAL mode at the newest schema", "[sqlite]") {
    TempDirectory directory;
    const std::string path = directory.file("enrollments.db");
    REQUIRE_FALSE(std::filesystem::exists(path));
    {
        auto opened = open_store(path);
        INFO(opened.message);
        REQUIRE(opened.ok());
    }
    CHECK(std::filesystem::exists(path));
    CHECK(user_version(path) == sqlite_schema_version());
    SqliteConnection db = raw_connection(path);
    CHECK(query_text(db, "PRAGMA journal_mode") == "wal");
    CHECK(db.query_int64("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = "
                         "'tokens_by_expires_at'") == 1);
}

TEST_CASE("sqlite store: reopening an existing database keeps its data", "[sqlite]") {
    TempDirectory directory;
    const std::string path = directory.file("enrollments.db");
    const NewToken token = sample_token();
    {
        auto opened = open_store(path);
        REQUIRE(opened.ok());
        REQUIRE(opened.value->issue_token(token) == StoreStatus::ok);
        DeviceRecord device;
        device.device_id = "device-2";
        device.enrolled = true;
        device.updated_at = 5;
        REQUIRE(opened.value->set_device(device) == StoreStatus::ok);
    }
    REQUIRE(user_version(path) == sqlite_schema_version());

    auto reopened = open_store(path);
    INFO(reopened.message);
    REQUIRE(reopened.ok());
    const auto found = reopened.value->find_token(token.hash);
    REQUIRE(found.ok());
    CHECK(found.value.profile == "wifi");
    CHECK(found.value.expires_at == 2000);
    const auto device = reopened.value->get_device("device-2");
    REQUIRE(device.ok());
    CHECK(device.value.enrolled);
    CHECK_FALSE(device.value.compliant);
    auto session = inline_session(*reopened.value);
    CHECK(check_now(*session, token.hash, 1500) == AccessVerdict::allow);
    CHECK(user_version(path) == sqlite_schema_version());
}

TEST_CASE("sqlite store: a database from a newer scepproxy is refused and left untouched", "[sqlite]") {
    TempDirectory directory;
    const std::string path = directory.file("enrollments.db");
    const int64_t future = sqlite_schema_version() + 1;
    {
        SqliteConnection db = raw_connection(path);
        REQUIRE(db.exec("CREATE TABLE from_the_future (x INTEGER)") == SQLITE_OK);
        REQUIRE(db.exec(("PRAGMA user_version = " + std::to_string(future)).c_str()) == SQLITE_OK);
    }
    const auto opened = open_store(path);
    CHECK(opened.status == StoreStatus::unavailable);
    CHECK_FALSE(opened.value);
    CHECK_THAT(opened.message, Catch::Contains("schema version " + std::to_string(future)) &&
                                   Catch::Contains("newer") && Catch::Contains(path));

    CHECK(user_version(path) == future);
    SqliteConnection db = raw_connection(path);
    CHECK(query_text(db, "PRAGMA journal_mode") != "wal");
    CHECK(db.query_int64("SELECT count(*) FROM sqlite_master WHERE name = 'tokens'") == 0);
}

TEST_CASE("sqlite store: a migration that fails is rolled back as a whole", "[sqlite]") {
    TempDirectory directory;
    const std::string path = directory.file("enrollments.db");
    {
        // Version 0 with a table already in the way of migration 1, half-way through it.
        SqliteConnection db = raw_connection(path);
        REQUIRE(db.exec("CREATE TABLE tokens (something_else TEXT)") == SQLITE_OK);
    }
    const auto opened = open_store(path);
    CHECK(opened.status == StoreStatus::unavailable);
    CHECK_THAT(opened.message, Catch::Contains("schema version 1") && Catch::Contains("tokens"));

    CHECK(user_version(path) == 0);
    SqliteConnection db = raw_connection(path);
    // devices is created before tokens in migration 1: the rollback must have removed it.
    CHECK(db.query_int64("SELECT count(*) FROM sqlite_master WHERE name = 'devices'") == 0);
}

TEST_CASE("sqlite store: paths that can't hold a database give unavailable with a reason", "[sqlite]") {
    TempDirectory directory;

    SECTION("missing directory") {
        const std::string path = directory.file("no/such/dir/enrollments.db");
        const auto opened = open_store(path);
        CHECK(opened.status == StoreStatus::unavailable);
        CHECK_FALSE(opened.value);
        CHECK_THAT(opened.message, Catch::Contains("directory '" + directory.file("no/such/dir") + "' does not exist"));
        CHECK_FALSE(std::filesystem::exists(directory.file("no")));
    }
    SECTION("a directory instead of a file") {
        const auto opened = open_store(directory.path().string());
        CHECK(opened.status == StoreStatus::unavailable);
        CHECK_THAT(opened.message, Catch::Contains(directory.path().string()));
    }
    SECTION("a file that is not a database") {
        const std::string path = directory.file("enrollments.db");
        {
            std::ofstream junk(path, std::ios::binary);
            junk << std::string(4096, 'x');
        }
        const auto opened = open_store(path);
        CHECK(opened.status == StoreStatus::unavailable);
        CHECK_THAT(opened.message, Catch::Contains("not a database"));
    }
    SECTION("an empty path") { CHECK(open_store("").status == StoreStatus::invalid); }
}

TEST_CASE("sqlite store: a session reconnects once the database is usable again", "[sqlite][access]") {
    TempDirectory directory;
    const std::string path = directory.file("enrollments.db");
    const std::string replacement_path = directory.file("replacement.db");
    const NewToken token = sample_token();

    auto original = open_store(path);
    REQUIRE(original.ok());
    auto session = inline_session(*original.value);
    REQUIRE(original.value->issue_token(token) == StoreStatus::ok);
    REQUIRE(check_now(*session, token.hash, 1500) == AccessVerdict::allow);

    REQUIRE(raw_connection(path).exec("DROP TABLE tokens") == SQLITE_OK);
    CHECK(check_now(*session, token.hash, 1500) == AccessVerdict::store_unavailable);

    // Swap in a healthy database file holding the token (stores closed, so no WAL is left over).
    original.value.reset();
    {
        auto replacement = open_store(replacement_path);
        REQUIRE(replacement.ok());
        REQUIRE(replacement.value->issue_token(token) == StoreStatus::ok);
    }
    std::filesystem::rename(replacement_path, path);
    CHECK(check_now(*session, token.hash, 1500) == AccessVerdict::allow);
}

TEST_CASE("sqlite store: a version 1 database gains the consumed column and keeps its tokens", "[sqlite]") {
    TempDirectory directory;
    const std::string path = directory.file("enrollments.db");
    const NewToken token = sample_token();
    {
        auto opened = open_store(path);
        REQUIRE(opened.ok());
        REQUIRE(opened.value->issue_token(token) == StoreStatus::ok);
    }
    REQUIRE(sqlite_schema_version() >= 2);
    {
        // Back to what version 1 wrote (no consumed_at).
        SqliteConnection db = raw_connection(path);
        REQUIRE(db.exec("ALTER TABLE tokens DROP COLUMN consumed_at; PRAGMA user_version = 1") == SQLITE_OK);
    }
    auto reopened = open_store(path);
    INFO(reopened.message);
    REQUIRE(reopened.ok());
    CHECK(user_version(path) == sqlite_schema_version());
    const auto found = reopened.value->find_token(token.hash);
    REQUIRE(found.ok());
    CHECK_FALSE(found.value.consumed);
    BindQuery bind;
    bind.token_hash = token.hash;
    bind.transaction_id = "tx";
    bind.now = 1500;
    REQUIRE(reopened.value->bind_transaction(bind).verdict == BindVerdict::bound);
    FinishQuery finish;
    finish.token_hash = token.hash;
    finish.transaction_id = "tx";
    finish.now = 1501;
    CHECK(reopened.value->finish_transaction(finish).status == StoreStatus::ok);
    CHECK(reopened.value->find_token(token.hash).value.consumed);
}

}  // namespace scepproxy::token::sqlite
