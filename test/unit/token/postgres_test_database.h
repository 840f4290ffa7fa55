// A PostgreSQL schema of its own for one test, on the server ctest starts (test/postgres_server.sh), dropped afterwards.
#pragma once

#include <catch2/catch.hpp>
#include <libpq-fe.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "test/unit/token/test_servers.h"
#include "token/enrollment_token.h"
#include "token/postgres/postgres_enrollment_store.h"

namespace scepproxy::token::test {

// Tests run in parallel against one server: each gets a schema (search_path) of its own,
// so the store's tables never meet another test's.
class PostgresTestDatabase {
public:
    PostgresTestDatabase() {
        server_conninfo_ = test_servers_file("postgres/conninfo");
        auto token = EnrollmentToken::generate();
        REQUIRE(token);
        schema_ = "test_" + token->hash().hex().substr(0, 16);
        execute_on(server_conninfo_, "CREATE SCHEMA " + schema_);
        conninfo_ = server_conninfo_ + " options='-csearch_path=" + schema_ + "'";
    }

    ~PostgresTestDatabase() {
        PGconn* conn = PQconnectdb(server_conninfo_.c_str());
        PQsetNoticeProcessor(conn, &ignore_notice, nullptr);
        if (PQstatus(conn) == CONNECTION_OK) PQclear(PQexec(conn, ("DROP SCHEMA " + schema_ + " CASCADE").c_str()));
        PQfinish(conn);
    }

    PostgresTestDatabase(const PostgresTestDatabase&) = delete;
    PostgresTestDatabase& operator=(const PostgresTestDatabase&) = delete;

    const std::string& conninfo() const { return conninfo_; }
    const std::string& schema() const { return schema_; }

    postgres::PostgresStoreOptions store_options(unsigned pool_size = 4) const {
        postgres::PostgresStoreOptions options;
        options.conninfo = conninfo_;
        options.pool.size = pool_size;
        options.timeout = std::chrono::seconds(10);  // generous: CI machines are small and shared
        return options;
    }

    // Runs SQL in this test's schema, behind the store's back.
    void execute(const std::string& sql) const { execute_on(conninfo_, sql); }

    // The first column of the first row of a query, as text.
    std::string query_text(const std::string& sql) const {
        PGconn* conn = connect(conninfo_);
        PGresult* result = PQexec(conn, sql.c_str());
        const bool ok = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) > 0;
        const std::string value = ok ? PQgetvalue(result, 0, 0) : "";
        const std::string error = PQresultErrorMessage(result);
        PQclear(result);
        PQfinish(conn);
        INFO(sql << ": " << error);
        REQUIRE(ok);
        return value;
    }

private:
    static void ignore_notice(void*, const char*) {}

    static PGconn* connect(const std::string& conninfo) {
        PGconn* conn = PQconnectdb(conninfo.c_str());
        PQsetNoticeProcessor(conn, &ignore_notice, nullptr);  // "drop cascades to ..."
        const bool ok = PQstatus(conn) == CONNECTION_OK;
        const std::string error = PQerrorMessage(conn);
        if (!ok) PQfinish(conn);
        INFO(error);
        REQUIRE(ok);
        return conn;
    }

    static void execute_on(const std::string& conninfo, const std::string& sql) {
        PGconn* conn = connect(conninfo);
        PGresult* result = PQexec(conn, sql.c_str());
        const ExecStatusType status = PQresultStatus(result);
        const std::string error = PQresultErrorMessage(result);
        PQclear(result);
        PQfinish(conn);
        INFO(sql << ": " << error);
        REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
    }

    std::string server_conninfo_;
    std::string conninfo_;
    std::string schema_;
};

}  // namespace scepproxy::token::test
