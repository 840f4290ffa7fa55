// A small pool of PostgreSQL connections: idle list under a mutex, connects outside it, a pause after a failed connect.
#include "token/postgres/pg_connection_pool.h"

#include <algorithm>
#include <string_view>
#include <utility>

namespace scepproxy::token::postgres {

PgConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), connection_(std::move(other.connection_)), reused_(other.reused_) {
    other.pool_ = nullptr;
}

PgConnectionPool::Lease& PgConnectionPool::Lease::operator=(Lease&& other) noexcept {
    if (this != &other) {
        give_back();
        pool_ = other.pool_;
        connection_ = std::move(other.connection_);
        reused_ = other.reused_;
        other.pool_ = nullptr;
    }
    return *this;
}

PgConnectionPool::Lease::~Lease() { give_back(); }

void PgConnectionPool::Lease::give_back() {
    if (pool_ != nullptr && connection_) pool_->give_back(std::move(connection_));
    pool_ = nullptr;
}

PgConnectionPool::PgConnectionPool(std::string conninfo, PgPoolOptions options, StoreObserver* observer)
    : options_(options), observer_(observer) {
    // A string libpq can't parse: one target, the string, for libpq to refuse when connecting.
    if (!make_pg_connect_plan(conninfo, plan_)) {
        plan_ = PgConnectPlan{};
        PgConnectTarget target;
        target.conninfo = std::move(conninfo);
        plan_.targets.push_back(std::move(target));
    }
}

std::unique_ptr<PgConnection> PgConnectionPool::connect(Deadline deadline, std::string& error) {
    const size_t count = plan_.targets.size();
    const size_t first = next_target_.load() % count;
    std::string errors;
    for (size_t tried = 0; tried < count; ++tried) {
        const size_t index = (first + tried) % count;
        const auto now = std::chrono::steady_clock::now();
        if (tried > 0 && deadline - now < kMinConnectTime) break;
        Deadline target_deadline = deadline;
        if (plan_.per_target_timeout.count() > 0) target_deadline = std::min(deadline, now + plan_.per_target_timeout);
        std::string target_error;
        std::unique_ptr<PgConnection> connection =
            PgConnection::connect(plan_.targets[index], target_deadline, target_error);
        if (connection) {
            next_target_.store(index);
            return connection;
        }
        // The next attempt starts past this one, unless another thread connected meanwhile.
        size_t expected = index;
        next_target_.compare_exchange_strong(expected, (index + 1) % count);
        static constexpr std::string_view kPrefix = "cannot connect to PostgreSQL: ";
        std::string_view reason = target_error;
        if (!errors.empty() && reason.substr(0, kPrefix.size()) == kPrefix) reason.remove_prefix(kPrefix.size());
        if (!errors.empty()) errors += "; ";
        errors += reason;
    }
    error = std::move(errors);
    return nullptr;
}

void PgConnectionPool::give_back(std::unique_ptr<PgConnection> connection) {
    {
        std::lock_guard lock(mutex_);
        if (connection->broken()) {
            --open_;  // closed below, outside the lock
        } else {
            idle_.push_back(std::move(connection));
        }
    }
    freed_.notify_one();
}

void PgConnectionPool::note_connect_result(bool ok, const std::string& error) {
    bool changed = false;
    {
        std::lock_guard lock(mutex_);
        if (!ok) {
            connect_paused_until_ = std::chrono::steady_clock::now() + options_.retry_interval;
            last_connect_error_ = error;
        }
        changed = reachable_ != ok;
        reachable_ = ok;
    }
    if (!changed || observer_ == nullptr) return;
    StoreEvent event;
    event.level = ok ? StoreEvent::Level::info : StoreEvent::Level::warn;
    event.name = ok ? "store_reconnected" : "store_connect_failed";
    event.detail = ok ? "connected to PostgreSQL again" : error;
    observer_->report(event);
}

PgConnectionPool::Lease PgConnectionPool::acquire(Deadline deadline, std::string& error) {
    std::unique_lock lock(mutex_);
    for (;;) {
        while (!idle_.empty()) {
            std::unique_ptr<PgConnection> connection = std::move(idle_.back());
            idle_.pop_back();
            lock.unlock();
            // A connection the server closed while it was idle (restart, admin kill) is
            // noticed here, before a request is sent on it.
            if (connection->still_usable()) return Lease(this, std::move(connection), true);
            connection.reset();
            lock.lock();
            --open_;
        }
        if (open_ < options_.size) {
            const auto now = std::chrono::steady_clock::now();
            if (now < connect_paused_until_) {
                error = last_connect_error_ + " (not retried for " + std::to_string(options_.retry_interval.count()) +
                        " ms after a failure)";
                return {};
            }
            // A caller with (almost) no time left fails without trying: a connect that had no
            // chance says nothing about the server, and must not pause everyone else.
            if (deadline - now < kMinConnectTime) {
                error = "no time left to connect to PostgreSQL";
                return {};
            }
            ++open_;
            lock.unlock();
            const Deadline connect_deadline = std::min(deadline, now + options_.connect_timeout);
            std::unique_ptr<PgConnection> connection = connect(connect_deadline, error);
            note_connect_result(connection != nullptr, error);
            if (connection) return Lease(this, std::move(connection), false);
            lock.lock();
            --open_;
            freed_.notify_one();  // someone waiting may now try to connect (and fail fast)
            return {};
        }
        if (freed_.wait_until(lock, deadline) == std::cv_status::timeout) {
            error = "no free PostgreSQL connection in time (all " + std::to_string(options_.size) + " busy)";
            return {};
        }
    }
}

}  // namespace scepproxy::token::postgres
