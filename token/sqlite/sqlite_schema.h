// The SQLite store's schema: an ordered list of migrations tracked with PRAGMA user_version.
#pragma once

#include <string>

#include "token/sqlite/sqlite_connection.h"

namespace scepproxy::token::sqlite {

// The newest schema version this build knows (the number of migrations).
int sqlite_schema_version();

// Reads PRAGMA user_version and refuses a database written by a newer scepproxy.
// `path` only names the file in `error`.
bool check_sqlite_schema_not_newer(SqliteConnection& db, const std::string& path, std::string& error);

// Applies the migrations the database is missing, in order, in one write transaction:
// either all of them land (and user_version moves) or none does.
bool migrate_sqlite_schema(SqliteConnection& db, const std::string& path, std::string& error);

}  // namespace scepproxy::token::sqlite
