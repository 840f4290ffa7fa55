// A small pool of PostgreSQL connections shared by the store's threads: idle list, lazy connects, a pause after a failed connect.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "token/postgres/pg_connection.h"
#include "token/store_observer.h"

namespace scepproxy::token::postgres {

struct PgPoolOptions {
    unsigned size = 4;  // at most this many connections
    std::chrono::milliseconds connect_timeout{5000};
    // After a failed connect, callers fail at once (with that failure) for this long rather
    // than each waiting for its own connect: a server that is down costs one attempt per
    // interval, and requests get their 503 without delay.
    std::chrono::milliseconds retry_interval{1000};
};

class PgConnectionPool {
public:
    // Less time than this left: no connect is even tried.
    static constexpr std::chrono::milliseconds kMinConnectTime{50};

    // `conninfo` is a secret: kept in memory, never part of a message. `observer` may be null.
    PgConnectionPool(std::string conninfo, PgPoolOptions options, StoreObserver* observer);
    PgConnectionPool(const PgConnectionPool&) = delete;
    PgConnectionPool& operator=(const PgConnectionPool&) = delete;

    // A connection held for one operation; returned to the pool when destroyed, closed
    // instead if it broke.
    class Lease {
    public:
        Lease() = default;
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&& other) noexcept;
        ~Lease();

        explicit operator bool() const { return connection_ != nullptr; }
        PgConnection& operator*() const { return *connection_; }
        PgConnection* operator->() const { return connection_.get(); }
        // True if it sat idle in the pool before (so it may have died meanwhile: the server
        // restarted); false if it was connected for this lease.
        bool reused() const { return reused_; }

    private:
        friend class PgConnectionPool;
        Lease(PgConnectionPool* pool, std::unique_ptr<PgConnection> connection, bool reused)
            : pool_(pool), connection_(std::move(connection)), reused_(reused) {}
        void give_back();

        PgConnectionPool* pool_ = nullptr;
        std::unique_ptr<PgConnection> connection_;
        bool reused_ = false;
    };

    // An idle connection, a new one, or one freed by another thread before `deadline`.
    // Empty with `error` when none can be had.
    Lease acquire(Deadline deadline, std::string& error);

private:
    void give_back(std::unique_ptr<PgConnection> connection);
    void note_connect_result(bool ok, const std::string& error);
    // Tries the plan's servers one at a time, each for at most its per-target timeout, starting
    // with the one that connected last (after a failed one: the next), until one connects or
    // `deadline` passes. So a server that is gone costs each attempt at most connect_timeout, and
    // when an attempt's time ran out on it the next attempt starts past it.
    std::unique_ptr<PgConnection> connect(Deadline deadline, std::string& error);

    const PgPoolOptions options_;
    StoreObserver* const observer_;
    PgConnectPlan plan_;                  // holds the connection string's secrets
    std::atomic<size_t> next_target_{0};  // index in plan_.targets to try first

    std::mutex mutex_;
    std::condition_variable freed_;
    std::vector<std::unique_ptr<PgConnection>> idle_;
    unsigned open_ = 0;  // idle + leased + being connected
    std::chrono::steady_clock::time_point connect_paused_until_{};
    std::string last_connect_error_;
    bool reachable_ = true;  // for logging the transitions only
};

}  // namespace scepproxy::token::postgres
