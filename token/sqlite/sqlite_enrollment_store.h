// The embedded EnrollmentStore backend: one SQLite file in WAL mode, one connection per worker session.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "token/enrollment_store.h"

namespace scepproxy::token::sqlite {

struct SqliteStoreOptions {
    std::string path;                              // the database file; its directory must exist
    std::chrono::milliseconds busy_timeout{5000};  // how long a locked database is waited for
};

// Opens (creating if missing) and migrates the database. Fails with status unavailable
// and a message naming the file when it can't be opened, isn't a database, or has a
// schema newer than this build knows.
StoreResult<std::unique_ptr<EnrollmentStore>> open_sqlite_enrollment_store(const SqliteStoreOptions& options);

}  // namespace scepproxy::token::sqlite
