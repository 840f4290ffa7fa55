// Running blocking store calls off the event loop: cancel-safe delivery back to the loop, and a session built on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "base/blocking_task_pool.h"
#include "token/enrollment_store.h"

namespace scepproxy::token {

using Deadline = std::chrono::steady_clock::time_point;

// One session's calls that are answered on a pool thread and delivered on the session's
// loop. cancel() and destruction guarantee no delivery afterwards: deliveries check, on the
// loop thread, that their call is still pending; a pool thread only posts to the loop
// while holding a lock that destruction also takes.
class OffloadedCalls {
public:
    using Delivery = std::function<void(SessionCallback&)>;

    // `timeout`: how long a call may take from run() to its answer. The work gets it as a
    // deadline; a job still queued when it passes is not run, its caller gets `refused`.
    OffloadedCalls(BlockingTaskPool& pool, PostToLoop post, std::chrono::milliseconds timeout);
    ~OffloadedCalls();
    OffloadedCalls(const OffloadedCalls&) = delete;
    OffloadedCalls& operator=(const OffloadedCalls&) = delete;

    // On the loop thread. `work(deadline)` runs on a pool thread and returns what to
    // deliver; `refused(message)` makes the delivery when the work can't run (queue full or
    // deadline passed while queued). The delivery is made with `done` on the loop thread,
    // unless cancelled.
    void run(SessionCallback& done, std::function<Delivery(Deadline)> work,
             std::function<Delivery(std::string)> refused);
    // On the loop thread: forget every pending call of `done`.
    void cancel(SessionCallback& done);
    size_t pending() const;

private:
    struct Shared {
        std::mutex post_mutex;  // held by pool threads while they post, and by destruction
        bool closed = false;
        PostToLoop post;
        // Loop thread only.
        std::unordered_map<uint64_t, SessionCallback*> pending;
    };

    static void deliver(const std::shared_ptr<Shared>& shared, uint64_t id, const Delivery& delivery);

    BlockingTaskPool& pool_;
    const std::chrono::milliseconds timeout_;
    std::shared_ptr<Shared> shared_;
    uint64_t next_id_ = 1;
};

// The blocking operations a network backend runs off the loop, each bounded by a deadline.
class DeadlineBoundOperations {
public:
    virtual AccessDecision check_access(const AccessQuery& query, Deadline deadline) = 0;
    virtual BindDecision bind_transaction(const BindQuery& query, Deadline deadline) = 0;
    virtual FinishResult finish_transaction(const FinishQuery& query, Deadline deadline) = 0;

protected:
    ~DeadlineBoundOperations() = default;
};

// A session that runs a backend's blocking operations on the pool: what a network
// backend without a native asynchronous client needs.
class OffloadedEnrollmentSession final : public EnrollmentSession {
public:
    OffloadedEnrollmentSession(DeadlineBoundOperations& backend, BlockingTaskPool& pool, PostToLoop post,
                               std::chrono::milliseconds timeout);

    void check_access(const AccessQuery& query, SessionCallback& done) override;
    void bind_transaction(const BindQuery& query, SessionCallback& done) override;
    void finish_transaction(const FinishQuery& query, SessionCallback& done) override;
    void cancel(SessionCallback& done) override { calls_.cancel(done); }

private:
    DeadlineBoundOperations& backend_;
    OffloadedCalls calls_;
};

}  // namespace scepproxy::token
