// Thin RAII wrappers over the SQLite C API: a connection, its prepared statements and a write transaction.
#include "token/sqlite/sqlite_connection.h"

#include <filesystem>
#include <system_error>

namespace scepproxy::token::sqlite {

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(statement_);
        statement_ = other.statement_;
        other.statement_ = nullptr;
    }
    return *this;
}

int SqliteStatement::bind_blob(int index, const void* data, size_t size) {
    return sqlite3_bind_blob64(statement_, index, data, size, SQLITE_TRANSIENT);
}

int SqliteStatement::bind_text(int index, std::string_view text) {
    return sqlite3_bind_text64(statement_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

int SqliteStatement::bind_int64(int index, int64_t value) { return sqlite3_bind_int64(statement_, index, value); }

void SqliteStatement::reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
}

std::string SqliteStatement::column_text(int column) const {
    const auto* text = sqlite3_column_text(statement_, column);
    if (text == nullptr) return {};
    // Length after sqlite3_column_text, as its documentation requires.
    const int size = sqlite3_column_bytes(statement_, column);
    return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

namespace {

// A clearer reason than SQLite's "unable to open database file" when the directory is missing.
std::string open_failure_message(const std::string& path, sqlite3* db) {
    std::filesystem::path directory = std::filesystem::path(path).parent_path();
    if (directory.empty()) directory = ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(directory, ec)) {
        return "cannot open sqlite database '" + path + "': directory '" + directory.string() + "' does not exist";
    }
    const char* reason = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    return "cannot open sqlite database '" + path + "': " + reason;
}

}  // namespace

std::optional<SqliteConnection> SqliteConnection::open(const std::string& path, int flags,
                                                       std::chrono::milliseconds busy_timeout, std::string& error) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
        error = open_failure_message(path, db);
        sqlite3_close_v2(db);  // SQLite allocates a handle even when opening fails
        return std::nullopt;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
    return SqliteConnection(db);
}

SqliteConnection& SqliteConnection::operator=(SqliteConnection&& other) noexcept {
    if (this != &other) {
        sqlite3_close_v2(db_);
        db_ = other.db_;
        other.db_ = nullptr;
    }
    return *this;
}

int SqliteConnection::exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

int SqliteConnection::prepare(const char* sql, SqliteStatement& out, bool persistent) {
    sqlite3_stmt* statement = nullptr;
    const unsigned int flags = persistent ? SQLITE_PREPARE_PERSISTENT : 0;
    const int rc = sqlite3_prepare_v3(db_, sql, -1, flags, &statement, nullptr);
    out = SqliteStatement(statement);
    return rc;
}

std::optional<int64_t> SqliteConnection::query_int64(const char* sql) {
    SqliteStatement statement;
    if (prepare(sql, statement) != SQLITE_OK) return std::nullopt;
    if (statement.step() != SQLITE_ROW) return std::nullopt;
    return statement.column_int64(0);
}

std::string SqliteConnection::error_message(std::string_view what) const {
    std::string message(what);
    message += ": ";
    message += db_ != nullptr ? sqlite3_errmsg(db_) : "no connection";
    return message;
}

SqliteWriteTransaction::SqliteWriteTransaction(SqliteConnection& db) : db_(db) {
    begun_ = db_.exec("BEGIN IMMEDIATE") == SQLITE_OK;
}

SqliteWriteTransaction::~SqliteWriteTransaction() {
    if (begun_ && !finished_) db_.exec("ROLLBACK");
}

int SqliteWriteTransaction::commit() {
    const int rc = db_.exec("COMMIT");
    // A failed COMMIT leaves the transaction open; the destructor then rolls it back.
    if (rc == SQLITE_OK) finished_ = true;
    return rc;
}

}  // namespace scepproxy::token::sqlite
