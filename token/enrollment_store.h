// EnrollmentStore: the interface every enrollment backend (sqlite, postgres, webhook) implements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "token/enrollment_token.h"

namespace scepproxy::token {

enum class StoreStatus {
    ok,
    not_found,    // no such token or device
    conflict,     // e.g. a token hash that already exists, a transaction that isn't the bound one
    unavailable,  // the backend can't be reached or failed (disk, network)
    invalid,      // the request itself is invalid (empty profile, ...)
};

const char* to_string(StoreStatus status);

// Times are Unix seconds (UTC).
struct TokenRecord {
    TokenHash hash;
    std::string profile;
    std::string device_id;
    int64_t created_at = 0;
    int64_t expires_at = 0;
    bool revoked = false;
    std::string transaction_id;  // bound SCEP transactionID, empty when none
    bool consumed = false;       // a certificate was issued on it (CertRep SUCCESS)
    int64_t consumed_at = 0;     // when the store recorded that SUCCESS, if consumed
};

struct DeviceRecord {
    std::string device_id;
    bool enrolled = false;
    bool compliant = false;
    int64_t updated_at = 0;
};

template <class T>
struct StoreResult {
    StoreStatus status = StoreStatus::ok;
    T value{};
    std::string message;  // for logs when status != ok; never contains a token
    bool ok() const { return status == StoreStatus::ok; }
};

// --- access checks -------------------------------------------------------------------

// What the data path asks before forwarding a request.
struct AccessQuery {
    TokenHash token_hash;
    bool check_device = false;  // true for PKIOperation: device must be enrolled and compliant
    int64_t now = 0;
    // What the request is, for backends that let someone else decide (the webhook sends them
    // to the MDM). Empty when the caller doesn't know; bounded by the caller.
    std::string operation;       // "PKIOperation", "GetCACert", ...
    std::string message_type;    // "PKCSReq", "RenewalReq", "CertPoll", ... (PKIOperation only)
    std::string transaction_id;  // the pkiMessage's transactionID (PKIOperation only)
};

enum class AccessVerdict {
    allow,
    token_unknown,  // unknown, expired or revoked: one answer for all three (403)
    token_expired,
    token_revoked,
    device_not_enrolled,   // 403
    device_not_compliant,  // 403
    store_unavailable,     // 503 unless on_error: allow
};

const char* to_string(AccessVerdict verdict);

struct AccessDecision {
    AccessVerdict verdict = AccessVerdict::store_unavailable;
    std::string profile;     // set when the token is known
    std::string device_id;   // set when the token is known; never logged in full
    int64_t expires_at = 0;  // the token's expiry when known (lets a cache re-check it)
    // Detail for the log: why the store was unavailable, or the reason a webhook gave for a
    // refusal. Never contains a token or a secret.
    std::string message;
    // With store_unavailable, a non-empty profile says the token itself checked out (known,
    // not expired, not revoked, device fine locally) and only a remote answer is missing:
    // what `on_error: allow` may let through. With allow, allowed_on_error says that is
    // what happened (the store was unavailable).
    bool allowed_on_error = false;
};

// --- transaction binding (issue 3) -----------------------------------------------------

// A token is good for one certificate. The first PKCSReq/RenewalReq binds it to its SCEP
// transactionID; the same transactionID again is allowed (clients resend their PKCSReq or
// send CertPoll after PENDING); another one is a mismatch. CertRep SUCCESS consumes the
// token (nothing more is bound to it); FAILURE releases it so the device can try again.
//
// transactionIDs are opaque text: 1..kMaxTransactionIdBytes bytes, no NUL.
inline constexpr size_t kMaxTransactionIdBytes = 256;

struct BindQuery {
    TokenHash token_hash;
    std::string transaction_id;
    // true for PKCSReq/RenewalReq: bind an unbound token. false for CertPoll (and GetCert,
    // GetCRL): only check that the token is bound to this transaction, never bind it.
    bool may_bind = true;
    int64_t now = 0;
};

enum class BindVerdict {
    bound,                 // this call bound the token to the transaction
    already_bound,         // the token was already bound to this same transaction
    not_bound,             // may_bind false and the token is bound to nothing
    transaction_mismatch,  // bound to another transaction (403)
    token_consumed,        // a certificate was already issued on this token (403)
    token_unknown,         // as for access checks: unknown, expired, revoked
    token_expired,
    token_revoked,
    transaction_invalid,  // empty, too long, or contains NUL
    store_unavailable,
};

const char* to_string(BindVerdict verdict);
// True for bound and already_bound: the request may go on.
inline bool binding_allows(BindVerdict verdict) {
    return verdict == BindVerdict::bound || verdict == BindVerdict::already_bound;
}

struct BindDecision {
    BindVerdict verdict = BindVerdict::store_unavailable;
    std::string message;  // detail for the log when store_unavailable
};

// How a bound transaction ended, from the upstream's CertRep.
enum class TransactionEnd {
    consume,  // SUCCESS: the token is done; later binds answer token_consumed
    release,  // FAILURE: the binding is cleared; the token may be bound again
};

struct FinishQuery {
    TokenHash token_hash;
    std::string transaction_id;
    TransactionEnd end = TransactionEnd::consume;
    int64_t now = 0;
};

// Results of finishing a transaction (StoreResult<void>-like: status and message):
//   ok         consumed / released, or already so (idempotent: an answer may be seen twice);
//              releasing a token that is bound to nothing is ok too
//   not_found  no such token
//   conflict   the token is bound to another transaction; consume of an unbound token;
//              release of a consumed token
//   invalid    transaction_id fails the shared check
//   unavailable
struct FinishResult {
    StoreStatus status = StoreStatus::unavailable;
    std::string message;
    bool ok() const { return status == StoreStatus::ok; }
};

// --- the data path: one session per worker -----------------------------------------------

// Receives a session's answers. Override the methods for the operations you start; the
// others are never called. An answer is valid only during the call (a cache passes its own
// entry): copy what is needed later.
class SessionCallback {
public:
    virtual void on_access_decided(const AccessDecision& decision) { (void)decision; }
    virtual void on_transaction_bound(const BindDecision& decision) { (void)decision; }
    virtual void on_transaction_finished(const FinishResult& result) { (void)result; }

protected:
    ~SessionCallback() = default;
};
using AccessCallback = SessionCallback;

// Runs a function on the session owner's event-loop thread, later, never inside the call.
// Thread-safe. Network backends hand their answers back with it. It must stay callable for
// as long as the session lives; it is not called any more once the session is destroyed.
using PostToLoop = std::function<void(std::function<void()>)>;

// One per worker thread, used only from that thread; never blocks on the network.
// Each operation calls exactly one method of `done` exactly once: possibly before returning
// (embedded backends, cache hits) or later, on the same thread, through PostToLoop
// (network backends). `done` must stay alive until then or until cancel(done).
class EnrollmentSession {
public:
    virtual ~EnrollmentSession() = default;
    // check_access ignores transaction binding: GetCACert/GetCACaps stay allowed on a
    // consumed token; a PKIOperation goes through bind_transaction, which refuses it.
    virtual void check_access(const AccessQuery& query, SessionCallback& done) = 0;
    virtual void bind_transaction(const BindQuery& query, SessionCallback& done) = 0;
    virtual void finish_transaction(const FinishQuery& query, SessionCallback& done) = 0;
    // The caller is going away: once cancel returns, no method of `done` is called for any
    // operation started before. (A write already sent to the backend may still happen.)
    virtual void cancel(SessionCallback& done) = 0;
};

// --- the control plane ------------------------------------------------------------------

struct NewToken {
    TokenHash hash;
    std::string profile;
    std::string device_id;
    int64_t created_at = 0;
    int64_t expires_at = 0;
};

// Shared checks so every backend refuses the same requests (status invalid).
// Each returns why the value can't be stored, or nullptr when it can.
// Names (profile, device id): 1..kMaxStoredNameBytes bytes, no NUL (PostgreSQL text can't hold one).
// Tokens: the hash is not all zeros (what a failed hash() leaves), expires_at > created_at.
inline constexpr size_t kMaxStoredNameBytes = 1024;
const char* new_token_problem(const NewToken& token);
const char* device_record_problem(const DeviceRecord& device);
const char* device_id_problem(const std::string& device_id);
const char* transaction_id_problem(const std::string& transaction_id);

// The verdict rules every backend shares, from a token's stored facts: the order of the
// checks is the contract (revoked, expired, then for PKIOperation the device).
struct TokenFacts {
    int64_t expires_at = 0;
    bool revoked = false;
    std::optional<DeviceRecord> device;  // nullopt: the store has no record of the device
};
AccessVerdict access_verdict(const TokenFacts& facts, const AccessQuery& query);

// The bind rules every backend shares (token/transaction_binding.h runs them): the verdict
// for a known token in its current state. `bound` means it is free to bind; the backend's
// atomic conditional write does the binding. Unknown tokens are the caller's to report.
struct BindingFacts {
    int64_t expires_at = 0;
    bool revoked = false;
    bool consumed = false;
    std::string transaction_id;  // empty: bound to nothing
};
BindVerdict bind_verdict(const BindingFacts& facts, const BindQuery& query);
// The rules for finishing a transaction, from the token's current binding: the answer, and
// whether the backend still has to write (false: already done, or refused).
struct FinishPlan {
    StoreStatus status = StoreStatus::ok;
    bool write = false;
};
FinishPlan finish_plan(const BindingFacts& facts, const FinishQuery& query);

// The control plane: thread-safe, may block (CLI, admin API, maintenance, tests).
class EnrollmentStore {
public:
    virtual ~EnrollmentStore() = default;
    virtual const char* backend_name() const = 0;

    // Stores a new token. Registers the device as enrolled and compliant if the
    // store has never seen it (the MDM vouches for it by asking); an existing
    // device record is left as it is.
    virtual StoreStatus issue_token(const NewToken& token) = 0;
    virtual StoreResult<TokenRecord> find_token(const TokenHash& hash) = 0;
    virtual StoreStatus revoke_token(const TokenHash& hash, int64_t now) = 0;
    virtual StoreStatus set_device(const DeviceRecord& device) = 0;
    virtual StoreResult<DeviceRecord> get_device(const std::string& device_id) = 0;
    // Deletes tokens that expired before `before`; returns how many.
    virtual StoreResult<int64_t> purge_expired(int64_t before) = 0;

    // Blocking forms of the session operations, with the same answers.
    virtual AccessDecision check_access(const AccessQuery& query) = 0;
    // Atomic: when several callers (threads, processes, proxies) race to bind one token to
    // different transactions, exactly one gets `bound`.
    virtual BindDecision bind_transaction(const BindQuery& query) = 0;
    virtual FinishResult finish_transaction(const FinishQuery& query) = 0;

    // A session for one worker thread; `post` runs functions on that worker's loop.
    virtual std::unique_ptr<EnrollmentSession> open_session(PostToLoop post) = 0;
};

}  // namespace scepproxy::token
