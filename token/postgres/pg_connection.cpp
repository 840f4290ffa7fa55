// One libpq connection in non-blocking mode: every wait is a poll(2) bounded by the caller's deadline.
#include "token/postgres/pg_connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace scepproxy::token::postgres {
namespace {

// libpq messages end with a newline and may span lines: one line for our logs.
std::string one_line(const char* message) {
    std::string text = message != nullptr ? message : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    for (char& c : text)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return text.empty() ? "unknown error" : text;
}

// Rounded up, so that a poll that times out returns at or after the deadline, never just before.
int remaining_ms(Deadline deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return 0;
    return left.count() > 60'000 ? 60'000 : static_cast<int>(left.count());
}

PgOutcome failed(std::string error, bool timed_out = false) {
    PgOutcome outcome;
    outcome.kind = PgOutcome::Kind::failed;
    outcome.error = std::move(error);
    outcome.timed_out = timed_out;
    return outcome;
}

// Errors after which the connection is not to be used again: the connection is lost (class 08),
// the server is shutting down or starting (57P01-57P03), or it is no longer a primary (25006
// read_only_sql_transaction: a demoted server, or one a load balancer sends us to by mistake).
// The statement did nothing; a new connection may find the right server.
bool error_ends_connection(const PGresult* result) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (state == nullptr) return false;
    return std::strncmp(state, "08", 2) == 0 || std::strcmp(state, "57P01") == 0 || std::strcmp(state, "57P02") == 0 ||
           std::strcmp(state, "57P03") == 0 || std::strcmp(state, "25006") == 0;
}

// libpq's list syntax (host, hostaddr, port): comma-separated, empty entries allowed.
std::vector<std::string> split_list(const char* value) {
    std::vector<std::string> entries;
    std::string_view rest = value;
    for (;;) {
        const size_t comma = rest.find(',');
        entries.emplace_back(rest.substr(0, comma));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return entries;
}

std::string target_label(const std::string& host, const std::string& hostaddr, const std::string& port) {
    std::string label = !host.empty() ? host : (!hostaddr.empty() ? hostaddr : std::string("default host"));
    if (!port.empty()) label += ":" + port;
    return label;
}

PgOutcome::Kind kind_of_error(const PGresult* result) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (state == nullptr) return PgOutcome::Kind::failed;
    if (std::strcmp(state, "23505") == 0) return PgOutcome::Kind::unique_violation;
    if (std::strncmp(state, "22", 2) == 0) return PgOutcome::Kind::bad_data;
    return PgOutcome::Kind::failed;
}

}  // namespace

PgParam PgParam::bytes(const void* data, size_t size) {
    return PgParam{std::string(static_cast<const char*>(data), size), true};
}
PgParam PgParam::text(std::string_view text) { return PgParam{std::string(text), false}; }
PgParam PgParam::int8(int64_t value) { return PgParam{std::to_string(value), false}; }
PgParam PgParam::boolean(bool value) { return PgParam{value ? "t" : "f", false}; }

bool PgConnection::conninfo_is_valid(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    PQfreemem(error);
    if (options == nullptr) return false;
    PQconninfoFree(options);
    return true;
}

bool make_pg_connect_plan(const std::string& conninfo, PgConnectPlan& plan) {
    plan = PgConnectPlan{};
    char* parse_error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &parse_error);
    PQfreemem(parse_error);
    if (options == nullptr) return false;
    std::vector<std::string> hosts, hostaddrs, ports;
    std::vector<std::string> keywords, values;
    for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
        if (option->val == nullptr) continue;
        const std::string_view keyword = option->keyword;
        if (keyword == "host") {
            hosts = split_list(option->val);
        } else if (keyword == "hostaddr") {
            hostaddrs = split_list(option->val);
        } else if (keyword == "port") {
            ports = split_list(option->val);
        } else {
            if (keyword == "connect_timeout") {
                // As libpq: whole seconds, at least 2; zero, negative or not a number: no timeout.
                const long seconds = std::strtol(option->val, nullptr, 10);
                if (seconds > 0) plan.per_target_timeout = std::chrono::seconds(seconds < 2 ? 2 : seconds);
            }
            keywords.emplace_back(option->keyword);
            values.emplace_back(option->val);
        }
    }
    PQconninfoFree(options);
    const size_t servers = std::max(hosts.size(), hostaddrs.size());
    // Lists libpq would refuse (2 hosts, 3 ports) are left to libpq, to be refused with its message.
    const bool lists_match = (hosts.empty() || hosts.size() == servers) &&
                             (hostaddrs.empty() || hostaddrs.size() == servers) &&
                             (ports.size() <= 1 || ports.size() == servers);
    auto entry = [](const std::vector<std::string>& list, size_t i) {
        return list.empty() ? std::string() : list[list.size() == 1 ? 0 : i];
    };
    if (servers <= 1 || !lists_match) {
        PgConnectTarget target;
        target.conninfo = conninfo;
        target.label = target_label(entry(hosts, 0), entry(hostaddrs, 0), entry(ports, 0));
        plan.targets.push_back(std::move(target));
        return true;
    }
    for (size_t i = 0; i < servers; ++i) {
        PgConnectTarget target;
        target.keywords = keywords;
        target.values = values;
        // An empty entry means libpq's default for that server; an empty value is ignored by libpq.
        const std::pair<const char*, const std::vector<std::string>*> lists[] = {
            {"host", &hosts}, {"hostaddr", &hostaddrs}, {"port", &ports}};
        for (const auto& [keyword, list] : lists) {
            if (list->empty()) continue;
            target.keywords.emplace_back(keyword);
            target.values.push_back(entry(*list, i));
        }
        target.label = target_label(entry(hosts, i), entry(hostaddrs, i), entry(ports, i));
        plan.targets.push_back(std::move(target));
    }
    return true;
}

std::unique_ptr<PgConnection> PgConnection::connect(const std::string& conninfo, Deadline deadline,
                                                    std::string& error) {
    PgConnectTarget target;
    target.conninfo = conninfo;
    return connect(target, deadline, error);
}

std::unique_ptr<PgConnection> PgConnection::connect(const PgConnectTarget& target, Deadline deadline,
                                                    std::string& error) {
    // The fallback names us in pg_stat_activity unless the string sets application_name itself.
    std::vector<const char*> keywords;
    std::vector<const char*> values;
    int expand_dbname = 0;
    if (!target.conninfo.empty()) {
        // expand_dbname: the first "dbname" value is the whole connection string.
        keywords = {"dbname", "fallback_application_name", nullptr};
        values = {target.conninfo.c_str(), "scepproxy", nullptr};
        expand_dbname = 1;
    } else {
        // First, so that the string's own fallback_application_name, if any, wins.
        keywords.push_back("fallback_application_name");
        values.push_back("scepproxy");
        for (size_t i = 0; i < target.keywords.size(); ++i) {
            keywords.push_back(target.keywords[i].c_str());
            values.push_back(target.values[i].c_str());
        }
        keywords.push_back(nullptr);
        values.push_back(nullptr);
    }
    PGconn* conn = PQconnectStartParams(keywords.data(), values.data(), expand_dbname);
    if (conn == nullptr) {
        error = "cannot allocate a PostgreSQL connection";
        return nullptr;
    }
    std::unique_ptr<PgConnection> connection(new PgConnection(conn));
    // Server notices ("relation already exists, skipping") would go to stderr otherwise.
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    if (PQstatus(conn) == CONNECTION_BAD) {
        error = "cannot connect to PostgreSQL: " + connection->connection_error();
        return nullptr;
    }
    // As libpq's documentation says: start as if the last poll asked for writing.
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
        if (status == PGRES_POLLING_FAILED) {
            error = "cannot connect to PostgreSQL: " + connection->connection_error();
            return nullptr;
        }
        std::string wait_error;
        if (!connection->wait_socket(status == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline, wait_error)) {
            error = "cannot connect to PostgreSQL: " + wait_error;
            if (!target.label.empty()) error += " (" + target.label + ")";
            return nullptr;
        }
        status = PQconnectPoll(conn);
    }
    if (PQsetnonblocking(conn, 1) != 0) {
        error = "cannot switch the PostgreSQL connection to non-blocking mode: " + connection->connection_error();
        return nullptr;
    }
    return connection;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

std::string PgConnection::connection_error() const { return one_line(PQerrorMessage(conn_)); }

bool PgConnection::wait_socket(short events, Deadline deadline, std::string& error) {
    const int fd = PQsocket(conn_);
    if (fd < 0) {
        error = "no connection to the server";
        return false;
    }
    for (;;) {
        pollfd entry{fd, events, 0};
        const int timeout = remaining_ms(deadline);
        const int n = ::poll(&entry, 1, timeout);
        if (n > 0) return true;
        if (n == 0) {
            error = "timed out waiting for the server";
            timed_out_ = true;
            return false;
        }
        if (errno != EINTR) {
            error = std::string("poll: ") + std::strerror(errno);
            return false;
        }
    }
}

bool PgConnection::send_and_flush(Deadline deadline, std::string& error) {
    for (;;) {
        const int flushed = PQflush(conn_);
        if (flushed == 0) return true;
        if (flushed < 0) {
            error = connection_error();
            return false;
        }
        // Still sending: the server may be waiting for us to read, so wait for either way.
        if (!wait_socket(POLLOUT | POLLIN, deadline, error)) return false;
        if (PQconsumeInput(conn_) == 0) {
            error = connection_error();
            return false;
        }
    }
}

PgOutcome PgConnection::collect(Deadline deadline) {
    PgOutcome outcome;
    outcome.kind = PgOutcome::Kind::ok;
    for (;;) {
        while (PQisBusy(conn_) != 0) {
            std::string error;
            if (!wait_socket(POLLIN, deadline, error)) {
                broken_ = true;  // a query is still in flight on it: never reused
                return failed(error, timed_out_);
            }
            if (PQconsumeInput(conn_) == 0) {
                broken_ = true;
                return failed(connection_error());
            }
        }
        PgResult result(PQgetResult(conn_));
        if (!result) break;
        const ExecStatusType status = PQresultStatus(result.get());
        const bool error = status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
                           status == PGRES_NONFATAL_ERROR;
        if (!outcome.ok()) continue;  // the first error is the one to report; drain the rest
        if (error) {
            if (error_ends_connection(result.get())) broken_ = true;
            outcome.kind = kind_of_error(result.get());
            outcome.error = one_line(PQresultErrorMessage(result.get()));
            outcome.result.reset();
        } else {
            outcome.result = std::move(result);
        }
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
        broken_ = true;
        if (outcome.ok()) return failed(connection_error());
    }
    return outcome;
}

PgOutcome PgConnection::execute(const PgStatement& statement, const std::vector<PgParam>& params, Deadline deadline) {
    if (broken()) return failed("connection is broken");
    std::string error;
    if (!prepared_[statement.index]) {
        if (PQsendPrepare(conn_, statement.name, statement.sql, static_cast<int>(statement.param_types.size()),
                          statement.param_types.data()) == 0 ||
            !send_and_flush(deadline, error)) {
            broken_ = true;
            return failed(error.empty() ? connection_error() : error, timed_out_);
        }
        PgOutcome prepared = collect(deadline);
        if (!prepared.ok()) return prepared;
        prepared_[statement.index] = true;
    }
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    for (const PgParam& param : params) {
        values.push_back(param.value.data());
        lengths.push_back(static_cast<int>(param.value.size()));
        formats.push_back(param.binary ? 1 : 0);
    }
    if (PQsendQueryPrepared(conn_, statement.name, static_cast<int>(params.size()), values.data(), lengths.data(),
                            formats.data(), /*text results*/ 0) == 0 ||
        !send_and_flush(deadline, error)) {
        broken_ = true;
        return failed(error.empty() ? connection_error() : error, timed_out_);
    }
    return collect(deadline);
}

PgOutcome PgConnection::execute_simple(const char* sql, Deadline deadline) {
    if (broken()) return failed("connection is broken");
    std::string error;
    if (PQsendQuery(conn_, sql) == 0 || !send_and_flush(deadline, error)) {
        broken_ = true;
        return failed(error.empty() ? connection_error() : error);
    }
    return collect(deadline);
}

bool PgConnection::still_usable() {
    if (broken()) return false;
    pollfd entry{PQsocket(conn_), POLLIN, 0};
    if (entry.fd < 0) return false;
    int ready = 0;
    do {
        ready = ::poll(&entry, 1, 0);
    } while (ready < 0 && errno == EINTR);
    // Readable (a message, the end of the stream, an error) or poll failing: not reused. Reading
    // what came wouldn't tell: one read returns the server's goodbye and leaves the end of the
    // stream behind it, so the connection would look alive and the next statement fail on it.
    if (ready != 0) broken_ = true;
    return !broken();
}

bool pg_is_null(const PGresult* result, int row, int column) { return PQgetisnull(result, row, column) != 0; }

std::string pg_text(const PGresult* result, int row, int column) {
    return std::string(PQgetvalue(result, row, column), static_cast<size_t>(PQgetlength(result, row, column)));
}

int64_t pg_int8(const PGresult* result, int row, int column) {
    return std::strtoll(PQgetvalue(result, row, column), nullptr, 10);
}

bool pg_bool(const PGresult* result, int row, int column) { return PQgetvalue(result, row, column)[0] == 't'; }

int64_t pg_rows_affected(const PGresult* result) {
    const char* count = PQcmdTuples(const_cast<PGresult*>(result));
    return count != nullptr && *count != '\0' ? std::strtoll(count, nullptr, 10) : 0;
}

}  // namespace scepproxy::token::postgres
