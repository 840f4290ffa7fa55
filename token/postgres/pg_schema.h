// The PostgreSQL store's schema: an ordered list of migrations, applied on start under an advisory lock.
#pragma once

#include <string>

#include "token/postgres/pg_connection.h"

namespace scepproxy::token::postgres {

// The newest schema version this build knows (the number of migrations).
int pg_schema_version();

// Brings the database to pg_schema_version(): each missing migration in its own
// transaction, all under one advisory lock, so proxies starting together apply each
// migration once. Refuses a database whose version is newer than this build's.
bool migrate_pg_schema(PgConnection& connection, Deadline deadline, std::string& error);

}  // namespace scepproxy::token::postgres
