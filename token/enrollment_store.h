// EnrollmentStore: the interface every enrollment backend (sqlite, postgres, webhook) implements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "token/enrollment_token.h"

namespace scepproxy::token {

enum class StoreStatus {
    ok,
    not_found,     // no such token or device
    conflict,      // e.g. a token hash that already exists
    unavailable,   // the backend can't be reached or failed (disk, network)
    invalid,       // the request itself is invalid (empty profile, ...)
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
    std::string transaction_id;   // bound SCEP transactionID, empty when none (issue 3)
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
    std::string message;          // for logs when status != ok; never contains a token
    bool ok() const { return status == StoreStatus::ok; }
};

// What the data path asks before forwarding a request.
struct AccessQuery {
    TokenHash token_hash;
    bool check_device = false;    // true for PKIOperation: device must be enrolled and compliant
    int64_t now = 0;
};

enum class AccessVerdict {
    allow,
    token_unknown,          // unknown, expired or revoked: one answer for all three (403)
    token_expired,
    token_revoked,
    device_not_enrolled,    // 403
    device_not_compliant,   // 403
    store_unavailable,      // 503 unless on_error: allow
};

const char* to_string(AccessVerdict verdict);

struct AccessDecision {
    AccessVerdict verdict = AccessVerdict::store_unavailable;
    std::string profile;          // set when the token is known
    std::string device_id;        // set when the token is known; never logged in full
    std::string message;          // detail for the log when store_unavailable
};

class AccessCallback {
public:
    virtual void on_access_decided(const AccessDecision& decision) = 0;
protected:
    ~AccessCallback() = default;
};

// One per worker thread, used only from that thread; never blocks on the network.
class EnrollmentSession {
public:
    virtual ~EnrollmentSession() = default;
    // Calls done.on_access_decided exactly once, possibly before returning
    // (embedded backends) or later on the same thread (network backends).
    virtual void check_access(const AccessQuery& query, AccessCallback& done) = 0;
    // The caller is going away: the callback must not be called any more.
    virtual void cancel(AccessCallback& done) { (void)done; }
};

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

// The control plane: thread-safe, may block (CLI, admin API, maintenance).
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

    // A session for one worker thread (its own database connection).
    virtual std::unique_ptr<EnrollmentSession> open_session() = 0;
};

}  // namespace scepproxy::token
