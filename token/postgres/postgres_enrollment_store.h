// The shared EnrollmentStore backend: PostgreSQL through a small libpq pool, answered off the event loop.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "token/enrollment_store.h"
#include "token/postgres/pg_connection_pool.h"
#include "token/store_observer.h"

namespace scepproxy::token::postgres {

struct PostgresStoreOptions {
    std::string conninfo;  // libpq connection string or URI: a secret, never logged
    PgPoolOptions pool;    // pool.size connections, and as many store threads
    // Each operation, from the request to its answer (waiting for a free connection or
    // thread included). Past it: unavailable.
    std::chrono::milliseconds timeout{2000};
    size_t max_queued = 4096;           // session operations waiting for a thread; beyond: unavailable
    StoreObserver* observer = nullptr;  // may be null; must outlive the store
};

// Connects once and migrates the schema (versioned; several proxies may start together).
// Fails with unavailable when the server can't be reached or the schema is newer than this
// build, invalid when the connection string can't be parsed. No message holds the string.
StoreResult<std::unique_ptr<EnrollmentStore>> open_postgres_enrollment_store(const PostgresStoreOptions& options);

// Reads a connection string from `path` by the rule of every secret file (base/secret_file.h):
// its first non-blank line, trimmed. Errors name the file, never its content.
StoreResult<std::string> read_conninfo_file(const std::string& path);

}  // namespace scepproxy::token::postgres
