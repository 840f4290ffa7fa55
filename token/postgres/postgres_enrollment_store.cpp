// The PostgreSQL EnrollmentStore: one prepared statement per operation, a retry on connections that died while idle.
#include "token/postgres/postgres_enrollment_store.h"

#include <utility>

#include "base/secret_file.h"
#include "token/offloaded_session.h"
#include "token/postgres/pg_schema.h"
#include "token/transaction_binding.h"

namespace scepproxy::token::postgres {
namespace {

// Migrations may rewrite a table: they get longer than a request does.
constexpr std::chrono::seconds kMigrationTimeout{60};

const PgStatement kAccessStatement{
    0,
    "scepproxy_access",
    "SELECT t.profile, t.device_id, t.expires_at, t.revoked_at IS NOT NULL, d.enrolled, d.compliant "
    "FROM scepproxy_tokens AS t LEFT JOIN scepproxy_devices AS d ON d.device_id = t.device_id "
    "WHERE t.hash = $1",
    {kByteaOid}};
// One statement, so atomic: the device row (if new) and the token land together or not at all.
const PgStatement kIssueStatement{
    1,
    "scepproxy_issue",
    "WITH new_device AS (INSERT INTO scepproxy_devices (device_id, enrolled, compliant, updated_at) "
    "VALUES ($3, true, true, $4) ON CONFLICT (device_id) DO NOTHING) "
    "INSERT INTO scepproxy_tokens (hash, profile, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    {kByteaOid, kTextOid, kTextOid, kInt8Oid, kInt8Oid}};
const PgStatement kFindStatement{
    2,
    "scepproxy_find",
    "SELECT profile, device_id, created_at, expires_at, revoked_at IS NOT NULL, transaction_id, "
    "consumed_at FROM scepproxy_tokens WHERE hash = $1",
    {kByteaOid}};
// COALESCE keeps the first revocation time; the row still counts as changed.
const PgStatement kRevokeStatement{3,
                                   "scepproxy_revoke",
                                   "UPDATE scepproxy_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE hash = $1",
                                   {kByteaOid, kInt8Oid}};
const PgStatement kSetDeviceStatement{
    4,
    "scepproxy_set_device",
    "INSERT INTO scepproxy_devices (device_id, enrolled, compliant, updated_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (device_id) DO UPDATE SET enrolled = excluded.enrolled, compliant = excluded.compliant, "
    "updated_at = excluded.updated_at",
    {kTextOid, kBoolOid, kBoolOid, kInt8Oid}};
const PgStatement kGetDeviceStatement{
    5,
    "scepproxy_get_device",
    "SELECT enrolled, compliant, updated_at FROM scepproxy_devices WHERE device_id = $1",
    {kTextOid}};
const PgStatement kPurgeStatement{
    6, "scepproxy_purge", "DELETE FROM scepproxy_tokens WHERE expires_at < $1", {kInt8Oid}};
// Under READ COMMITTED a second UPDATE of the same row waits for the first to commit, then
// re-checks its WHERE on the new row: of racing binders exactly one changes it.
const PgStatement kBindStatement{
    7,
    "scepproxy_bind",
    "UPDATE scepproxy_tokens SET transaction_id = $2 WHERE hash = $1 AND transaction_id IS NULL "
    "AND revoked_at IS NULL AND consumed_at IS NULL AND expires_at > $3",
    {kByteaOid, kTextOid, kInt8Oid}};
const PgStatement kBindingStatement{
    8,
    "scepproxy_binding",
    "SELECT expires_at, revoked_at IS NOT NULL, consumed_at IS NOT NULL, transaction_id "
    "FROM scepproxy_tokens WHERE hash = $1",
    {kByteaOid}};
const PgStatement kConsumeStatement{
    9,
    "scepproxy_consume",
    "UPDATE scepproxy_tokens SET consumed_at = COALESCE(consumed_at, $3) WHERE hash = $1 AND transaction_id = $2",
    {kByteaOid, kTextOid, kInt8Oid}};
const PgStatement kReleaseStatement{
    10,
    "scepproxy_release",
    "UPDATE scepproxy_tokens SET transaction_id = NULL WHERE hash = $1 AND transaction_id = $2 "
    "AND consumed_at IS NULL",
    {kByteaOid, kTextOid}};

PgParam hash_param(const TokenHash& hash) { return PgParam::bytes(hash.bytes.data(), hash.bytes.size()); }

StoreStatus status_of(const PgOutcome& outcome) {
    switch (outcome.kind) {
        case PgOutcome::Kind::ok: return StoreStatus::ok;
        case PgOutcome::Kind::unique_violation: return StoreStatus::conflict;
        case PgOutcome::Kind::bad_data: return StoreStatus::invalid;
        case PgOutcome::Kind::failed: return StoreStatus::unavailable;
    }
    return StoreStatus::unavailable;
}

// The rows of a successful SELECT, if it has the expected shape; a server that answers
// something else (a table altered by hand) is treated as failing.
const PGresult* rows_of(const PgOutcome& outcome, int columns) {
    if (!outcome.ok() || !outcome.result) return nullptr;
    const PGresult* result = outcome.result.get();
    if (PQresultStatus(result) != PGRES_TUPLES_OK || PQnfields(result) != columns) return nullptr;
    return result;
}

std::string failure(const char* what, const PgOutcome& outcome) {
    return std::string("PostgreSQL ") + what + " failed: " + (outcome.ok() ? "unexpected result" : outcome.error);
}

template <class T>
StoreResult<T> fail(StoreStatus status, std::string message) {
    StoreResult<T> result;
    result.status = status;
    result.message = std::move(message);
    return result;
}

class PostgresEnrollmentStore final : public EnrollmentStore, public DeadlineBoundOperations {
public:
    explicit PostgresEnrollmentStore(const PostgresStoreOptions& options)
        : options_(options),
          pool_(options.conninfo, options.pool, options.observer),
          task_pool_(options.pool.size, options.max_queued) {
        options_.conninfo.clear();  // the pool keeps the one copy
    }

    PgConnectionPool& pool() { return pool_; }

    const char* backend_name() const override { return "postgres"; }

    StoreStatus issue_token(const NewToken& token) override {
        if (new_token_problem(token) != nullptr) return StoreStatus::invalid;
        // Run again when its connection turned out dead: a lost answer leaves it unknown whether
        // the first run inserted the token, and the second run tells. The hash is random (122
        // bits), so a row with it that the second run finds is the first run's, and the token is
        // stored as asked.
        bool retried = false;
        const PgOutcome outcome =
            run(kIssueStatement,
                {hash_param(token.hash), PgParam::text(token.profile), PgParam::text(token.device_id),
                 PgParam::int8(token.created_at), PgParam::int8(token.expires_at)},
                deadline(), /*retriable=*/true, &retried);
        if (retried && outcome.kind == PgOutcome::Kind::unique_violation) return StoreStatus::ok;
        return status_of(outcome);
    }

    StoreResult<TokenRecord> find_token(const TokenHash& hash) override {
        const PgOutcome outcome = run(kFindStatement, {hash_param(hash)}, deadline(), true);
        const PGresult* rows = rows_of(outcome, 7);
        if (!rows) return fail<TokenRecord>(StoreStatus::unavailable, failure("find token", outcome));
        if (PQntuples(rows) == 0) return fail<TokenRecord>(StoreStatus::not_found, "token " + hash.id() + " not found");
        StoreResult<TokenRecord> result;
        result.value.hash = hash;
        result.value.profile = pg_text(rows, 0, 0);
        result.value.device_id = pg_text(rows, 0, 1);
        result.value.created_at = pg_int8(rows, 0, 2);
        result.value.expires_at = pg_int8(rows, 0, 3);
        result.value.revoked = pg_bool(rows, 0, 4);
        result.value.transaction_id = pg_is_null(rows, 0, 5) ? std::string() : pg_text(rows, 0, 5);
        result.value.consumed = !pg_is_null(rows, 0, 6);
        result.value.consumed_at = result.value.consumed ? pg_int8(rows, 0, 6) : 0;
        return result;
    }

    StoreStatus revoke_token(const TokenHash& hash, int64_t now) override {
        const PgOutcome outcome = run(kRevokeStatement, {hash_param(hash), PgParam::int8(now)}, deadline(), true);
        if (!outcome.ok()) return status_of(outcome);
        return pg_rows_affected(outcome.result.get()) == 0 ? StoreStatus::not_found : StoreStatus::ok;
    }

    StoreStatus set_device(const DeviceRecord& device) override {
        if (device_record_problem(device) != nullptr) return StoreStatus::invalid;
        return status_of(run(kSetDeviceStatement,
                             {PgParam::text(device.device_id), PgParam::boolean(device.enrolled),
                              PgParam::boolean(device.compliant), PgParam::int8(device.updated_at)},
                             deadline(), true));
    }

    StoreResult<DeviceRecord> get_device(const std::string& device_id) override {
        if (const char* problem = device_id_problem(device_id))
            return fail<DeviceRecord>(StoreStatus::invalid, problem);
        const PgOutcome outcome = run(kGetDeviceStatement, {PgParam::text(device_id)}, deadline(), true);
        if (outcome.kind == PgOutcome::Kind::bad_data)
            return fail<DeviceRecord>(StoreStatus::not_found, "device not found");
        const PGresult* rows = rows_of(outcome, 3);
        if (!rows) return fail<DeviceRecord>(StoreStatus::unavailable, failure("get device", outcome));
        if (PQntuples(rows) == 0) return fail<DeviceRecord>(StoreStatus::not_found, "device not found");
        StoreResult<DeviceRecord> result;
        result.value.device_id = device_id;
        result.value.enrolled = pg_bool(rows, 0, 0);
        result.value.compliant = pg_bool(rows, 0, 1);
        result.value.updated_at = pg_int8(rows, 0, 2);
        return result;
    }

    StoreResult<int64_t> purge_expired(int64_t before) override {
        const PgOutcome outcome = run(kPurgeStatement, {PgParam::int8(before)}, deadline(), true);
        if (!outcome.ok()) return fail<int64_t>(StoreStatus::unavailable, failure("purge expired tokens", outcome));
        StoreResult<int64_t> result;
        result.value = pg_rows_affected(outcome.result.get());
        return result;
    }

    AccessDecision check_access(const AccessQuery& query) override { return check_access(query, deadline()); }
    BindDecision bind_transaction(const BindQuery& query) override { return bind_transaction(query, deadline()); }
    FinishResult finish_transaction(const FinishQuery& query) override { return finish_transaction(query, deadline()); }

    AccessDecision check_access(const AccessQuery& query, Deadline deadline) override {
        AccessDecision decision;
        const PgOutcome outcome = run(kAccessStatement, {hash_param(query.token_hash)}, deadline, true);
        const PGresult* rows = rows_of(outcome, 6);
        if (!rows) {
            decision.message = failure("access check", outcome);
            return decision;
        }
        if (PQntuples(rows) == 0) {
            decision.verdict = AccessVerdict::token_unknown;
            return decision;
        }
        decision.profile = pg_text(rows, 0, 0);
        decision.device_id = pg_text(rows, 0, 1);
        decision.expires_at = pg_int8(rows, 0, 2);
        TokenFacts facts;
        facts.expires_at = decision.expires_at;
        facts.revoked = pg_bool(rows, 0, 3);
        if (!pg_is_null(rows, 0, 4)) {  // NULL: no device row (LEFT JOIN)
            facts.device.emplace();
            facts.device->enrolled = pg_bool(rows, 0, 4);
            facts.device->compliant = pg_bool(rows, 0, 5);
        }
        decision.verdict = access_verdict(facts, query);
        return decision;
    }

    BindDecision bind_transaction(const BindQuery& query, Deadline deadline) override {
        return run_bind(
            query,
            [&] {
                return changed_rows(run(kBindStatement,
                                        {hash_param(query.token_hash), PgParam::text(query.transaction_id),
                                         PgParam::int8(query.now)},
                                        deadline, true),
                                    "bind transaction");
            },
            [&] { return read_binding(query.token_hash, deadline); });
    }

    FinishResult finish_transaction(const FinishQuery& query, Deadline deadline) override {
        return run_finish(
            query,
            [&] {
                if (query.end == TransactionEnd::consume) {
                    return changed_rows(run(kConsumeStatement,
                                            {hash_param(query.token_hash), PgParam::text(query.transaction_id),
                                             PgParam::int8(query.now)},
                                            deadline, true),
                                        "consume transaction");
                }
                return changed_rows(run(kReleaseStatement,
                                        {hash_param(query.token_hash), PgParam::text(query.transaction_id)}, deadline,
                                        true),
                                    "release transaction");
            },
            [&] { return read_binding(query.token_hash, deadline); });
    }

    std::unique_ptr<EnrollmentSession> open_session(PostToLoop post) override {
        return std::make_unique<OffloadedEnrollmentSession>(*this, task_pool_, std::move(post), options_.timeout);
    }

private:
    Deadline deadline() const { return std::chrono::steady_clock::now() + options_.timeout; }

    // Runs one statement on a pooled connection. A reused connection that turns out dead (the
    // server restarted, or failed over, since it was last used) is closed and the statement run
    // again on another, for statements that are safe to run twice. After a restart every pooled
    // connection may be dead: each retry closes one, so at most pool size + 1 runs, all within
    // `deadline`. `retried` (if given) tells whether it ran more than once.
    PgOutcome run(const PgStatement& statement, const std::vector<PgParam>& params, Deadline deadline, bool retriable,
                  bool* retried = nullptr) {
        for (unsigned attempt = 0;; ++attempt) {
            std::string error;
            PgConnectionPool::Lease lease = pool_.acquire(deadline, error);
            if (!lease) {
                PgOutcome outcome;
                outcome.error = error;
                return outcome;
            }
            PgOutcome outcome = lease->execute(statement, params, deadline);
            // Not after a timeout: the deadline is spent, and the server may just be slow.
            const bool retry = !outcome.ok() && !outcome.timed_out && lease->broken() && lease.reused() && retriable &&
                               attempt < options_.pool.size;
            if (!retry) return outcome;
            if (retried != nullptr) *retried = true;
        }
    }

    // Whether a conditional UPDATE changed a row (StoreResult<bool>, as run_bind wants).
    static StoreResult<bool> changed_rows(const PgOutcome& outcome, const char* what) {
        StoreResult<bool> result;
        if (!outcome.ok())
            return fail<bool>(status_of(outcome) == StoreStatus::invalid ? StoreStatus::invalid
                                                                         : StoreStatus::unavailable,
                              failure(what, outcome));
        result.value = pg_rows_affected(outcome.result.get()) > 0;
        return result;
    }

    StoreResult<BindingFacts> read_binding(const TokenHash& hash, Deadline deadline) {
        const PgOutcome outcome = run(kBindingStatement, {hash_param(hash)}, deadline, true);
        const PGresult* rows = rows_of(outcome, 4);
        if (!rows) return fail<BindingFacts>(StoreStatus::unavailable, failure("read transaction binding", outcome));
        if (PQntuples(rows) == 0)
            return fail<BindingFacts>(StoreStatus::not_found, "token " + hash.id() + " not found");
        StoreResult<BindingFacts> result;
        result.value.expires_at = pg_int8(rows, 0, 0);
        result.value.revoked = pg_bool(rows, 0, 1);
        result.value.consumed = pg_bool(rows, 0, 2);
        result.value.transaction_id = pg_is_null(rows, 0, 3) ? std::string() : pg_text(rows, 0, 3);
        return result;
    }

    PostgresStoreOptions options_;
    PgConnectionPool pool_;
    BlockingTaskPool task_pool_;  // declared after pool_: its threads stop before the connections go
};

}  // namespace

StoreResult<std::string> read_conninfo_file(const std::string& path) {
    std::string error;
    auto conninfo = read_secret_file(path, &error);
    if (!conninfo) return fail<std::string>(StoreStatus::invalid, "PostgreSQL conninfo_file: " + error);
    StoreResult<std::string> result;
    result.value = std::move(*conninfo);
    return result;
}

StoreResult<std::unique_ptr<EnrollmentStore>> open_postgres_enrollment_store(const PostgresStoreOptions& options) {
    StoreResult<std::unique_ptr<EnrollmentStore>> result;
    if (!PgConnection::conninfo_is_valid(options.conninfo)) {
        // libpq's own message may quote the string, password included: not passed on.
        result.status = StoreStatus::invalid;
        result.message =
            "the PostgreSQL connection string is not valid libpq syntax (key=value pairs or a postgresql:// URI)";
        return result;
    }
    if (options.pool.size == 0) {
        result.status = StoreStatus::invalid;
        result.message = "the PostgreSQL pool size must be at least 1";
        return result;
    }
    auto store = std::make_unique<PostgresEnrollmentStore>(options);
    const Deadline connect_deadline = std::chrono::steady_clock::now() + options.pool.connect_timeout;
    PgConnectionPool::Lease lease = store->pool().acquire(connect_deadline, result.message);
    if (!lease) {
        result.status = StoreStatus::unavailable;
        return result;
    }
    if (!migrate_pg_schema(*lease, std::chrono::steady_clock::now() + kMigrationTimeout, result.message)) {
        result.status = StoreStatus::unavailable;
        return result;
    }
    lease = PgConnectionPool::Lease();  // back to the pool before the store is handed out
    result.status = StoreStatus::ok;
    result.value = std::move(store);
    return result;
}

}  // namespace scepproxy::token::postgres
