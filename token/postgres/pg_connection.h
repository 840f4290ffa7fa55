// One libpq connection driven in non-blocking mode with deadlines: connect, lazily prepared statements, simple queries.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scepproxy::token::postgres {

using Deadline = std::chrono::steady_clock::time_point;  // same as token::Deadline

// A statement this backend prepares on each connection the first time it is used.
// `index` is its slot in the per-connection "prepared yet?" table (0..kMaxStatements-1).
struct PgStatement {
    int index;
    const char* name;
    const char* sql;
    std::vector<Oid> param_types;
};
inline constexpr int kMaxStatements = 16;

// Parameter types (pg_type OIDs; stable, the catalog's fixed ones).
inline constexpr Oid kBoolOid = 16;
inline constexpr Oid kByteaOid = 17;
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kTextOid = 25;

// One parameter value: bytea goes in binary, everything else as text.
struct PgParam {
    std::string value;
    bool binary = false;
    static PgParam bytes(const void* data, size_t size);
    static PgParam text(std::string_view text);
    static PgParam int8(int64_t value);
    static PgParam boolean(bool value);
};

struct PgResultDeleter {
    void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// What a statement did.
struct PgOutcome {
    enum class Kind {
        ok,                // result holds the rows (or the command tag)
        unique_violation,  // SQLSTATE 23505
        bad_data,          // SQLSTATE class 22 (e.g. text that isn't valid in the database encoding)
        failed,            // any other error (connection lost, timeout, missing table, ...)
    };
    Kind kind = Kind::failed;
    PgResult result;
    std::string error;       // when not ok: libpq's or the server's message, one line
    bool timed_out = false;  // failed because the deadline passed (the connection is broken)
    bool ok() const { return kind == Kind::ok; }
};

// One server to connect to: the connection string as it is, or its options with host, hostaddr
// and port narrowed to one entry of their lists.
struct PgConnectTarget {
    std::string conninfo;               // non-empty: the whole string, handed to libpq as it is
    std::vector<std::string> keywords;  // else these options (values[i] for keywords[i])
    std::vector<std::string> values;
    std::string label;  // "host:port" as the string names it, for messages (never a secret)
};

// The servers a connection string names, in its order. A string with one host (or none: libpq's
// defaults) is one target, the string itself. A multi-host string (host=a,b port=p1,p2, or
// postgresql://a:p1,b:p2/...) is one target per server: libpq tries the next host only when a
// connect fails, and in non-blocking mode it has no per-host timeout (connect_timeout is applied by
// its blocking PQconnectdb only), so one server that never answers would hold every attempt until
// the caller's deadline and the servers after it would never be tried.
struct PgConnectPlan {
    std::vector<PgConnectTarget> targets;
    // The string's connect_timeout, as libpq reads it: per server, whole seconds, 1 counts as 2;
    // 0 (or unset): none, the caller's deadline only.
    std::chrono::milliseconds per_target_timeout{0};
};

// False if libpq can't parse the string (its reason is not given: it may quote a password).
bool make_pg_connect_plan(const std::string& conninfo, PgConnectPlan& plan);

class PgConnection {
public:
    // Checks the connection string without connecting. False if libpq can't parse it; the
    // reason is not given, since libpq's message may quote the string (it holds a password).
    static bool conninfo_is_valid(const std::string& conninfo);

    // Connects (non-blocking, polled until `deadline`). On failure returns null with `error`.
    // `conninfo` is never part of `error`.
    static std::unique_ptr<PgConnection> connect(const std::string& conninfo, Deadline deadline, std::string& error);
    // The same for one server of a plan; a timeout's message names target.label.
    static std::unique_ptr<PgConnection> connect(const PgConnectTarget& target, Deadline deadline, std::string& error);

    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    // Runs a statement (preparing it first on this connection if needed), waiting until
    // `deadline`. A timeout or lost connection leaves broken() true.
    PgOutcome execute(const PgStatement& statement, const std::vector<PgParam>& params, Deadline deadline);
    // Runs SQL text that may hold several statements (migrations); the outcome of the first
    // failing statement, or of the last one.
    PgOutcome execute_simple(const char* sql, Deadline deadline);

    // Once broken, a connection is closed rather than reused.
    bool broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
    // False if the server sent anything while the connection sat idle. Between queries a server
    // says nothing unless it is going away: the FATAL of a shutdown (57P01), the WARNING of an
    // immediate one or a crash, then the end of the stream, which often lies behind a read that
    // returns the message. Such a connection is closed, never reused.
    bool still_usable();

private:
    explicit PgConnection(PGconn* conn) : conn_(conn) {}
    bool send_and_flush(Deadline deadline, std::string& error);
    PgOutcome collect(Deadline deadline);
    // False with `error` on timeout (and then timed_out_ is set) or poll failure.
    bool wait_socket(short events, Deadline deadline, std::string& error);
    std::string connection_error() const;

    PGconn* conn_ = nullptr;
    bool broken_ = false;
    bool timed_out_ = false;
    bool prepared_[kMaxStatements] = {};
};

// Column helpers for text-format results; `row`, `column` must be in range.
bool pg_is_null(const PGresult* result, int row, int column);
std::string pg_text(const PGresult* result, int row, int column);
int64_t pg_int8(const PGresult* result, int row, int column);
bool pg_bool(const PGresult* result, int row, int column);
// Rows a command changed (UPDATE/DELETE/INSERT), from its command tag.
int64_t pg_rows_affected(const PGresult* result);

}  // namespace scepproxy::token::postgres
