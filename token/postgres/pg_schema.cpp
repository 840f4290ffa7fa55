// The PostgreSQL store's schema: versioned migrations recorded in scepproxy_schema_version.
#include "token/postgres/pg_schema.h"

#include <iterator>

namespace scepproxy::token::postgres {
namespace {

// Migration i takes the schema from version i to i + 1. Append only: never edit a
// migration that has shipped, add a new one instead. Tables carry a scepproxy_ prefix so
// the store can share a database (and a schema) with other applications.
constexpr const char* kMigrations[] = {
    // v1: tokens (stored by SHA-256 only) and the devices they were issued to.
    R"sql(
        CREATE TABLE scepproxy_devices (
            device_id  text PRIMARY KEY,
            enrolled   boolean NOT NULL,
            compliant  boolean NOT NULL,
            updated_at bigint NOT NULL
        );
        CREATE TABLE scepproxy_tokens (
            hash           bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
            profile        text NOT NULL,
            device_id      text NOT NULL REFERENCES scepproxy_devices (device_id),
            created_at     bigint NOT NULL,
            expires_at     bigint NOT NULL,
            revoked_at     bigint,
            transaction_id text,
            consumed_at    bigint
        );
        CREATE INDEX scepproxy_tokens_by_expires_at ON scepproxy_tokens (expires_at);
        CREATE INDEX scepproxy_tokens_by_device_id ON scepproxy_tokens (device_id);
    )sql",
};

// Any constant works; it only has to be the same for every scepproxy (pg_advisory_lock takes a bigint).
constexpr const char* kTakeMigrationLock = "SELECT pg_advisory_xact_lock(7262146530157104641)";

bool run(PgConnection& connection, const std::string& sql, Deadline deadline, std::string& error,
         const std::string& what) {
    PgOutcome outcome = connection.execute_simple(sql.c_str(), deadline);
    if (outcome.ok()) return true;
    error = what + ": " + outcome.error;
    return false;
}

}  // namespace

int pg_schema_version() { return static_cast<int>(std::size(kMigrations)); }

bool migrate_pg_schema(PgConnection& connection, Deadline deadline, std::string& error) {
    // The version table itself is created under the lock too: two proxies starting on an
    // empty database would otherwise race on CREATE TABLE.
    const std::string setup = std::string("BEGIN; ") + kTakeMigrationLock + "; " +
                              "CREATE TABLE IF NOT EXISTS scepproxy_schema_version (version integer NOT NULL); "
                              "INSERT INTO scepproxy_schema_version (version) "
                              "SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM scepproxy_schema_version); "
                              "COMMIT";
    if (!run(connection, setup, deadline, error, "cannot create the PostgreSQL schema version table")) {
        connection.execute_simple("ROLLBACK", deadline);
        return false;
    }
    for (;;) {
        // Each step: lock, read the version, apply the next migration, record it, commit.
        if (!run(connection, std::string("BEGIN; ") + kTakeMigrationLock, deadline, error,
                 "cannot start migrating the PostgreSQL schema")) {
            connection.execute_simple("ROLLBACK", deadline);
            return false;
        }
        PgOutcome version = connection.execute_simple("SELECT max(version) FROM scepproxy_schema_version", deadline);
        if (!version.ok() || PQntuples(version.result.get()) != 1 || pg_is_null(version.result.get(), 0, 0)) {
            error = "cannot read the PostgreSQL schema version: " + (version.ok() ? "no row" : version.error);
            connection.execute_simple("ROLLBACK", deadline);
            return false;
        }
        const int64_t current = pg_int8(version.result.get(), 0, 0);
        if (current > pg_schema_version()) {
            error = "the PostgreSQL database has schema version " + std::to_string(current) + ", newer than the " +
                    std::to_string(pg_schema_version()) +
                    " this scepproxy knows; refusing to use it (upgrade scepproxy)";
            connection.execute_simple("ROLLBACK", deadline);
            return false;
        }
        if (current == pg_schema_version()) {
            return run(connection, "COMMIT", deadline, error, "cannot finish migrating the PostgreSQL schema");
        }
        const std::string next = std::to_string(current + 1);
        // Our own constants only: nothing from outside is spliced into this SQL.
        const std::string step =
            std::string(kMigrations[current]) + "; UPDATE scepproxy_schema_version SET version = " + next + "; COMMIT";
        if (!run(connection, step, deadline, error, "migrating the PostgreSQL schema to version " + next + " failed")) {
            connection.execute_simple("ROLLBACK", deadline);
            return false;
        }
    }
}

}  // namespace scepproxy::token::postgres
