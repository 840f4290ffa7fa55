// Thin RAII wrappers over the SQLite C API: a connection, its prepared statements and a write transaction.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace scepproxy::token::sqlite {

// A prepared statement; finalized when destroyed. Bind indexes start at 1, columns at 0.
class SqliteStatement {
public:
    SqliteStatement() = default;
    explicit SqliteStatement(sqlite3_stmt* statement) : statement_(statement) {}
    ~SqliteStatement() { sqlite3_finalize(statement_); }
    SqliteStatement(SqliteStatement&& other) noexcept : statement_(other.statement_) { other.statement_ = nullptr; }
    SqliteStatement& operator=(SqliteStatement&& other) noexcept;
    SqliteStatement(const SqliteStatement&) = delete;
    SqliteStatement& operator=(const SqliteStatement&) = delete;

    explicit operator bool() const { return statement_ != nullptr; }

    // Each returns an SQLite result code (SQLITE_OK on success). Values are copied.
    int bind_blob(int index, const void* data, size_t size);
    int bind_text(int index, std::string_view text);
    int bind_int64(int index, int64_t value);

    int step() { return sqlite3_step(statement_); }  // SQLITE_ROW, SQLITE_DONE or an error
    // Ends the statement's read/write so it no longer holds a snapshot, and clears bindings.
    void reset();

    bool column_is_null(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }
    int64_t column_int64(int column) const { return sqlite3_column_int64(statement_, column); }
    std::string column_text(int column) const;

private:
    sqlite3_stmt* statement_ = nullptr;
};

// One database connection, used by one thread at a time; closed when destroyed.
class SqliteConnection {
public:
    // Opens `path` with SQLITE_OPEN_* `flags` and sets the busy timeout. On failure
    // returns nullopt and says why in `error` (naming a missing parent directory).
    static std::optional<SqliteConnection> open(const std::string& path, int flags,
                                                std::chrono::milliseconds busy_timeout, std::string& error);

    ~SqliteConnection() { sqlite3_close_v2(db_); }
    SqliteConnection(SqliteConnection&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    SqliteConnection& operator=(SqliteConnection&& other) noexcept;
    SqliteConnection(const SqliteConnection&) = delete;
    SqliteConnection& operator=(const SqliteConnection&) = delete;

    // Runs SQL without results (may hold several statements); returns an SQLite result code.
    int exec(const char* sql);
    // Prepares one statement; `persistent` hints that it is kept for the connection's life.
    int prepare(const char* sql, SqliteStatement& out, bool persistent = false);
    // Runs a statement that returns one integer (e.g. "PRAGMA user_version"); nullopt on error.
    std::optional<int64_t> query_int64(const char* sql);

    int64_t changes() const { return sqlite3_changes64(db_); }
    // "<what>: <SQLite's message for the last error>", for StoreResult messages.
    std::string error_message(std::string_view what) const;

private:
    explicit SqliteConnection(sqlite3* db) : db_(db) {}
    sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, so a read never has
// to be upgraded and fail with SQLITE_BUSY half-way); rolls back unless committed.
class SqliteWriteTransaction {
public:
    explicit SqliteWriteTransaction(SqliteConnection& db);
    ~SqliteWriteTransaction();
    SqliteWriteTransaction(const SqliteWriteTransaction&) = delete;
    SqliteWriteTransaction& operator=(const SqliteWriteTransaction&) = delete;

    bool begun() const { return begun_; }
    int commit();  // SQLite result code

private:
    SqliteConnection& db_;
    bool begun_ = false;
    bool finished_ = false;
};

}  // namespace scepproxy::token::sqlite
