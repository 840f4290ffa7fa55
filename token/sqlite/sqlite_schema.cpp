// The SQLite store's schema: an ordered list of migrations tracked with PRAGMA user_version.
#include "token/sqlite/sqlite_schema.h"

#include <iterator>

namespace scepproxy::token::sqlite {
namespace {

// Migration i takes the schema from version i to i + 1. Append only: never edit a
// migration that has shipped, add a new one instead.
constexpr const char* kMigrations[] = {
    // v1: tokens (stored by SHA-256 only) and the devices they were issued to.
    R"sql(
        CREATE TABLE devices (
            device_id  TEXT PRIMARY KEY NOT NULL,
            enrolled   INTEGER NOT NULL CHECK (enrolled IN (0, 1)),
            compliant  INTEGER NOT NULL CHECK (compliant IN (0, 1)),
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE tokens (
            hash           BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
            profile        TEXT NOT NULL,
            device_id      TEXT NOT NULL REFERENCES devices (device_id),
            created_at     INTEGER NOT NULL,
            expires_at     INTEGER NOT NULL,
            revoked_at     INTEGER,
            transaction_id TEXT
        );
        CREATE INDEX tokens_by_expires_at ON tokens (expires_at);
        CREATE INDEX tokens_by_device_id ON tokens (device_id);
    )sql",
    // v2: when a certificate was issued on the token (CertRep SUCCESS); NULL until then.
    R"sql(
        ALTER TABLE tokens ADD COLUMN consumed_at INTEGER;
    )sql",
};

std::string newer_schema_message(const std::string& path, int64_t found) {
    return "sqlite database '" + path + "' has schema version " + std::to_string(found) + ", newer than the " +
           std::to_string(sqlite_schema_version()) + " this scepproxy knows; refusing to open it (upgrade scepproxy)";
}

}  // namespace

int sqlite_schema_version() { return static_cast<int>(std::size(kMigrations)); }

bool check_sqlite_schema_not_newer(SqliteConnection& db, const std::string& path, std::string& error) {
    const std::optional<int64_t> version = db.query_int64("PRAGMA user_version");
    if (!version) {
        error = db.error_message("cannot read the schema version of sqlite database '" + path + "'");
        return false;
    }
    if (*version > sqlite_schema_version()) {
        error = newer_schema_message(path, *version);
        return false;
    }
    return true;
}

bool migrate_sqlite_schema(SqliteConnection& db, const std::string& path, std::string& error) {
    // Fast path without the write lock: an up-to-date database (every open but the first).
    if (db.query_int64("PRAGMA user_version") == sqlite_schema_version()) return true;

    // The version is read again under the write lock, so two processes opening the same
    // new file can't both apply the same migration.
    SqliteWriteTransaction transaction(db);
    if (!transaction.begun()) {
        error = db.error_message("cannot start migrating sqlite database '" + path + "'");
        return false;
    }
    const std::optional<int64_t> version = db.query_int64("PRAGMA user_version");
    if (!version) {
        error = db.error_message("cannot read the schema version of sqlite database '" + path + "'");
        return false;
    }
    if (*version > sqlite_schema_version()) {
        error = newer_schema_message(path, *version);
        return false;
    }
    if (*version == sqlite_schema_version()) return true;  // another process just did it

    for (int64_t next = *version; next < sqlite_schema_version(); ++next) {
        if (db.exec(kMigrations[next]) != SQLITE_OK) {
            error = db.error_message("migrating sqlite database '" + path + "' to schema version " +
                                     std::to_string(next + 1) + " failed");
            return false;
        }
    }
    // PRAGMA takes no bound parameters; the value is our own constant.
    const std::string set_version = "PRAGMA user_version = " + std::to_string(sqlite_schema_version());
    if (db.exec(set_version.c_str()) != SQLITE_OK || transaction.commit() != SQLITE_OK) {
        error = db.error_message("cannot record schema version of sqlite database '" + path + "'");
        return false;
    }
    return true;
}

}  // namespace scepproxy::token::sqlite
