// The embedded EnrollmentStore backend: one SQLite file in WAL mode, one connection per worker session.
#include "token/sqlite/sqlite_enrollment_store.h"

#include <mutex>
#include <optional>
#include <utility>

#include "token/sqlite/sqlite_connection.h"
#include "token/sqlite/sqlite_schema.h"
#include "token/transaction_binding.h"

namespace scepproxy::token::sqlite {
namespace {

// Connections are each used by one thread at a time (the control plane holds a mutex,
// a session belongs to one worker), so SQLite's own per-connection mutex is not needed.
constexpr int kControlOpenFlags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
// Sessions never create the file: the control plane has opened and migrated it.
constexpr int kSessionOpenFlags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

int bind_value(SqliteStatement& statement, int index, const TokenHash& hash) {
    return statement.bind_blob(index, hash.bytes.data(), hash.bytes.size());
}
int bind_value(SqliteStatement& statement, int index, const std::string& text) {
    return statement.bind_text(index, text);
}
int bind_value(SqliteStatement& statement, int index, int64_t value) { return statement.bind_int64(index, value); }

// Prepares `sql` and binds `values` to ?1, ?2, ... in order; returns the first failing
// SQLite result code, or SQLITE_OK. Every value from outside is bound, never spliced in.
template <class... Values>
int prepare_bound(SqliteConnection& db, const char* sql, SqliteStatement& statement, const Values&... values) {
    int rc = db.prepare(sql, statement);
    int index = 0;
    ((rc = rc == SQLITE_OK ? bind_value(statement, ++index, values) : rc), ...);
    return rc;
}

// Prepares, binds and runs a statement that returns no rows; SQLITE_DONE on success.
template <class... Values>
int run_bound(SqliteConnection& db, const char* sql, const Values&... values) {
    SqliteStatement statement;
    const int rc = prepare_bound(db, sql, statement, values...);
    return rc == SQLITE_OK ? statement.step() : rc;
}

constexpr const char* kAccessQuerySql =
    "SELECT t.profile, t.device_id, t.expires_at, t.revoked_at IS NOT NULL, d.enrolled, d.compliant "
    "FROM tokens AS t LEFT JOIN devices AS d ON d.device_id = t.device_id "
    "WHERE t.hash = ?1";

// Runs the prepared kAccessQuerySql for one query; on an SQLite error the decision is
// store_unavailable with a message and the caller should drop the connection.
AccessDecision run_access_query(SqliteConnection& db, SqliteStatement& access_query, const AccessQuery& query) {
    AccessDecision decision;  // store_unavailable until the query answers
    int rc = bind_value(access_query, 1, query.token_hash);
    if (rc == SQLITE_OK) rc = access_query.step();
    if (rc == SQLITE_DONE) {
        decision.verdict = AccessVerdict::token_unknown;
    } else if (rc == SQLITE_ROW) {
        decision.profile = access_query.column_text(0);
        decision.device_id = access_query.column_text(1);
        decision.expires_at = access_query.column_int64(2);
        TokenFacts facts;
        facts.expires_at = decision.expires_at;
        facts.revoked = access_query.column_int64(3) != 0;
        // NULL columns: the device has no row (LEFT JOIN).
        if (!access_query.column_is_null(4)) {
            facts.device.emplace();
            facts.device->enrolled = access_query.column_int64(4) != 0;
            facts.device->compliant = !access_query.column_is_null(5) && access_query.column_int64(5) != 0;
        }
        decision.verdict = access_verdict(facts, query);
    } else {
        decision.message = db.error_message("sqlite access check failed");
    }
    access_query.reset();  // ends the read snapshot so checkpoints can proceed
    return decision;
}

StoreResult<BindingFacts> read_binding_facts(SqliteConnection& db, const TokenHash& hash) {
    StoreResult<BindingFacts> result;
    SqliteStatement statement;
    int rc = prepare_bound(db,
                           "SELECT expires_at, revoked_at IS NOT NULL, consumed_at IS NOT NULL, transaction_id "
                           "FROM tokens WHERE hash = ?1",
                           statement, hash);
    if (rc == SQLITE_OK) rc = statement.step();
    if (rc == SQLITE_DONE) {
        result.status = StoreStatus::not_found;
        result.message = "token " + hash.id() + " not found";
    } else if (rc != SQLITE_ROW) {
        result.status = StoreStatus::unavailable;
        result.message = db.error_message("read transaction binding");
    } else {
        result.value.expires_at = statement.column_int64(0);
        result.value.revoked = statement.column_int64(1) != 0;
        result.value.consumed = statement.column_int64(2) != 0;
        result.value.transaction_id = statement.column_text(3);  // NULL reads as ""
    }
    return result;
}

// Runs a conditional UPDATE; ok with value true when it changed a row.
template <class... Values>
StoreResult<bool> conditional_update(SqliteConnection& db, const char* what, const char* sql, const Values&... values) {
    StoreResult<bool> result;
    if (run_bound(db, sql, values...) != SQLITE_DONE) {
        result.status = StoreStatus::unavailable;
        result.message = db.error_message(what);
        return result;
    }
    result.value = db.changes() > 0;
    return result;
}

// Binding and finishing, on whichever connection the caller holds (control or session).
// Each UPDATE is atomic on its own: SQLite takes the write lock for the statement.
BindDecision run_bind_on(SqliteConnection& db, const BindQuery& query) {
    return run_bind(
        query,
        [&] {
            return conditional_update(
                db, "bind transaction",
                "UPDATE tokens SET transaction_id = ?2 WHERE hash = ?1 AND transaction_id IS NULL "
                "AND revoked_at IS NULL AND consumed_at IS NULL AND expires_at > ?3",
                query.token_hash, query.transaction_id, query.now);
        },
        [&] { return read_binding_facts(db, query.token_hash); });
}

FinishResult run_finish_on(SqliteConnection& db, const FinishQuery& query) {
    return run_finish(
        query,
        [&] {
            if (query.end == TransactionEnd::consume) {
                return conditional_update(db, "consume transaction",
                                          "UPDATE tokens SET consumed_at = COALESCE(consumed_at, ?3) "
                                          "WHERE hash = ?1 AND transaction_id = ?2",
                                          query.token_hash, query.transaction_id, query.now);
            }
            return conditional_update(db, "release transaction",
                                      "UPDATE tokens SET transaction_id = NULL "
                                      "WHERE hash = ?1 AND transaction_id = ?2 AND consumed_at IS NULL",
                                      query.token_hash, query.transaction_id);
        },
        [&] { return read_binding_facts(db, query.token_hash); });
}

// A worker's own connection and prepared access query; no locks, one thread. Answers
// inline: a local file, read from the page cache in microseconds. Binds write to the WAL
// (no fsync with synchronous=NORMAL); a long write lock held by another process can make
// one wait up to busy_timeout.
class SqliteEnrollmentSession final : public EnrollmentSession {
public:
    explicit SqliteEnrollmentSession(SqliteStoreOptions options) : options_(std::move(options)) {
        std::string error;
        connect(error);  // failures are reported (and retried) by each operation
    }

    void check_access(const AccessQuery& query, SessionCallback& done) override {
        AccessDecision decision;
        if (connect(decision.message)) {
            decision = run_access_query(*db_, access_query_, query);
            if (decision.verdict == AccessVerdict::store_unavailable) disconnect();
        }
        done.on_access_decided(decision);
    }

    void bind_transaction(const BindQuery& query, SessionCallback& done) override {
        BindDecision decision;
        if (connect(decision.message)) {
            decision = run_bind_on(*db_, query);
            if (decision.verdict == BindVerdict::store_unavailable) disconnect();
        }
        done.on_transaction_bound(decision);
    }

    void finish_transaction(const FinishQuery& query, SessionCallback& done) override {
        FinishResult result;
        if (connect(result.message)) {
            result = run_finish_on(*db_, query);
            if (result.status == StoreStatus::unavailable) disconnect();
        }
        done.on_transaction_finished(result);
    }

    void cancel(SessionCallback&) override {}  // answers are always given inline

private:
    bool connect(std::string& error) {
        if (db_) return true;
        std::optional<SqliteConnection> db =
            SqliteConnection::open(options_.path, kSessionOpenFlags, options_.busy_timeout, error);
        if (!db) return false;
        if (db->prepare(kAccessQuerySql, access_query_, /*persistent=*/true) != SQLITE_OK) {
            error = db->error_message("cannot prepare the sqlite access query on '" + options_.path + "'");
            access_query_ = SqliteStatement();
            return false;
        }
        db_ = std::move(db);
        return true;
    }

    // After an error the connection is dropped and reopened by the next operation, so a
    // replaced or repaired database file is picked up without a restart.
    void disconnect() {
        access_query_ = SqliteStatement();  // finalized before its connection closes
        db_.reset();
    }

    SqliteStoreOptions options_;
    std::optional<SqliteConnection> db_;
    SqliteStatement access_query_;  // declared after db_: destroyed before it
};

// The control plane: one connection, serialized by a mutex.
class SqliteEnrollmentStore final : public EnrollmentStore {
public:
    SqliteEnrollmentStore(SqliteStoreOptions options, SqliteConnection db)
        : options_(std::move(options)), db_(std::move(db)) {}

    const char* backend_name() const override { return "sqlite"; }

    StoreStatus issue_token(const NewToken& token) override {
        if (new_token_problem(token) != nullptr) return StoreStatus::invalid;
        std::lock_guard lock(mutex_);
        SqliteWriteTransaction transaction(db_);
        if (!transaction.begun()) return StoreStatus::unavailable;
        // A device the store has never seen is vouched for by the MDM that asks for its
        // token; an existing row (perhaps marked non-compliant) is left alone.
        if (run_bound(db_,
                      "INSERT OR IGNORE INTO devices (device_id, enrolled, compliant, updated_at) "
                      "VALUES (?1, 1, 1, ?2)",
                      token.device_id, token.created_at) != SQLITE_DONE) {
            return StoreStatus::unavailable;
        }
        const int rc = run_bound(db_,
                                 "INSERT INTO tokens (hash, profile, device_id, created_at, expires_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5)",
                                 token.hash, token.profile, token.device_id, token.created_at, token.expires_at);
        if (rc != SQLITE_DONE) {
            // Rolling back also forgets a device row inserted just above.
            return rc == SQLITE_CONSTRAINT_PRIMARYKEY ? StoreStatus::conflict : StoreStatus::unavailable;
        }
        return transaction.commit() == SQLITE_OK ? StoreStatus::ok : StoreStatus::unavailable;
    }

    StoreResult<TokenRecord> find_token(const TokenHash& hash) override {
        StoreResult<TokenRecord> result;
        std::lock_guard lock(mutex_);
        SqliteStatement statement;
        int rc = prepare_bound(db_,
                               "SELECT profile, device_id, created_at, expires_at, revoked_at IS NOT NULL, "
                               "transaction_id, consumed_at FROM tokens WHERE hash = ?1",
                               statement, hash);
        if (rc == SQLITE_OK) rc = statement.step();
        if (rc == SQLITE_DONE) return fail(result, StoreStatus::not_found, "token " + hash.id() + " not found");
        if (rc != SQLITE_ROW) return fail(result, StoreStatus::unavailable, db_.error_message("find token"));
        result.value.hash = hash;
        result.value.profile = statement.column_text(0);
        result.value.device_id = statement.column_text(1);
        result.value.created_at = statement.column_int64(2);
        result.value.expires_at = statement.column_int64(3);
        result.value.revoked = statement.column_int64(4) != 0;
        result.value.transaction_id = statement.column_text(5);  // NULL reads as ""
        result.value.consumed = !statement.column_is_null(6);
        result.value.consumed_at = statement.column_int64(6);  // NULL reads as 0
        return result;
    }

    StoreStatus revoke_token(const TokenHash& hash, int64_t now) override {
        std::lock_guard lock(mutex_);
        // COALESCE keeps the first revocation time when revoked twice; the row still
        // counts as changed, so "already revoked" is ok and only a missing token is not_found.
        if (run_bound(db_, "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE hash = ?1", hash, now) !=
            SQLITE_DONE) {
            return StoreStatus::unavailable;
        }
        return db_.changes() == 0 ? StoreStatus::not_found : StoreStatus::ok;
    }

    StoreStatus set_device(const DeviceRecord& device) override {
        if (device_record_problem(device) != nullptr) return StoreStatus::invalid;
        std::lock_guard lock(mutex_);
        const int rc = run_bound(db_,
                                 "INSERT INTO devices (device_id, enrolled, compliant, updated_at) "
                                 "VALUES (?1, ?2, ?3, ?4) "
                                 "ON CONFLICT (device_id) DO UPDATE SET enrolled = excluded.enrolled, "
                                 "compliant = excluded.compliant, updated_at = excluded.updated_at",
                                 device.device_id, int64_t{device.enrolled}, int64_t{device.compliant},
                                 device.updated_at);
        return rc == SQLITE_DONE ? StoreStatus::ok : StoreStatus::unavailable;
    }

    StoreResult<DeviceRecord> get_device(const std::string& device_id) override {
        StoreResult<DeviceRecord> result;
        if (const char* problem = device_id_problem(device_id)) {
            return fail(result, StoreStatus::invalid, problem);
        }
        std::lock_guard lock(mutex_);
        SqliteStatement statement;
        int rc = prepare_bound(db_, "SELECT enrolled, compliant, updated_at FROM devices WHERE device_id = ?1",
                               statement, device_id);
        if (rc == SQLITE_OK) rc = statement.step();
        if (rc == SQLITE_DONE) return fail(result, StoreStatus::not_found, "device not found");
        if (rc != SQLITE_ROW) return fail(result, StoreStatus::unavailable, db_.error_message("get device"));
        result.value.device_id = device_id;
        result.value.enrolled = statement.column_int64(0) != 0;
        result.value.compliant = statement.column_int64(1) != 0;
        result.value.updated_at = statement.column_int64(2);
        return result;
    }

    StoreResult<int64_t> purge_expired(int64_t before) override {
        StoreResult<int64_t> result;
        std::lock_guard lock(mutex_);
        if (run_bound(db_, "DELETE FROM tokens WHERE expires_at < ?1", before) != SQLITE_DONE) {
            return fail(result, StoreStatus::unavailable, db_.error_message("purge expired tokens"));
        }
        result.value = db_.changes();
        return result;
    }

    AccessDecision check_access(const AccessQuery& query) override {
        std::lock_guard lock(mutex_);
        SqliteStatement access_query;
        if (db_.prepare(kAccessQuerySql, access_query) != SQLITE_OK) {
            AccessDecision decision;
            decision.message = db_.error_message("sqlite access check failed");
            return decision;
        }
        return run_access_query(db_, access_query, query);
    }

    BindDecision bind_transaction(const BindQuery& query) override {
        std::lock_guard lock(mutex_);
        return run_bind_on(db_, query);
    }

    FinishResult finish_transaction(const FinishQuery& query) override {
        std::lock_guard lock(mutex_);
        return run_finish_on(db_, query);
    }

    std::unique_ptr<EnrollmentSession> open_session(PostToLoop) override {
        return std::make_unique<SqliteEnrollmentSession>(options_);
    }

private:
    template <class T>
    static StoreResult<T> fail(StoreResult<T>& result, StoreStatus status, std::string message) {
        result.status = status;
        result.message = std::move(message);
        return std::move(result);
    }

    const SqliteStoreOptions options_;
    std::mutex mutex_;
    SqliteConnection db_;
};

// Per-connection settings of the control connection; WAL and the schema persist in the file.
bool configure_control_connection(SqliteConnection& db, const std::string& path, std::string& error) {
    // Checked before anything is written, so a newer scepproxy's file is left untouched.
    if (!check_sqlite_schema_not_newer(db, path, error)) return false;

    SqliteStatement journal_mode;
    if (db.prepare("PRAGMA journal_mode = WAL", journal_mode) != SQLITE_OK || journal_mode.step() != SQLITE_ROW) {
        error = db.error_message("cannot switch sqlite database '" + path + "' to WAL");
        return false;
    }
    // WAL lets worker sessions read while the control plane writes; SQLite answers with
    // the mode it ended up in (e.g. "memory" for ":memory:", which can't be shared).
    const std::string mode = journal_mode.column_text(0);
    journal_mode = SqliteStatement();
    if (mode != "wal") {
        error = "sqlite database '" + path + "' cannot use WAL journal mode (got '" + mode + "')";
        return false;
    }
    // NORMAL is durable across application crashes in WAL mode; a power loss may drop
    // the last commits, which the MDM can re-issue.
    if (db.exec("PRAGMA synchronous = NORMAL") != SQLITE_OK || db.exec("PRAGMA foreign_keys = ON") != SQLITE_OK) {
        error = db.error_message("cannot configure sqlite database '" + path + "'");
        return false;
    }
    return migrate_sqlite_schema(db, path, error);
}

}  // namespace

StoreResult<std::unique_ptr<EnrollmentStore>> open_sqlite_enrollment_store(const SqliteStoreOptions& options) {
    StoreResult<std::unique_ptr<EnrollmentStore>> result;
    result.status = StoreStatus::unavailable;
    if (options.path.empty()) {
        result.status = StoreStatus::invalid;
        result.message = "sqlite database path is empty";
        return result;
    }
    std::optional<SqliteConnection> db =
        SqliteConnection::open(options.path, kControlOpenFlags, options.busy_timeout, result.message);
    if (!db || !configure_control_connection(*db, options.path, result.message)) return result;
    result.status = StoreStatus::ok;
    result.value = std::make_unique<SqliteEnrollmentStore>(options, std::move(*db));
    return result;
}

}  // namespace scepproxy::token::sqlite
