// Running blocking store calls off the event loop: a bounded job runner, cancel-safe delivery back to the loop, and a session built on them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "token/enrollment_store.h"

namespace scepproxy::token {

using Deadline = std::chrono::steady_clock::time_point;

// A fixed set of threads taking jobs from one bounded queue. Owned by a network backend's
// store; its sessions submit to it.
class BlockingJobRunner {
public:
    BlockingJobRunner(unsigned threads, size_t max_queued);
    // Jobs still queued are dropped unrun; running ones finish first (bounded by the
    // backend's own timeouts).
    ~BlockingJobRunner();
    BlockingJobRunner(const BlockingJobRunner&) = delete;
    BlockingJobRunner& operator=(const BlockingJobRunner&) = delete;

    // Thread-safe. False when the queue is full: the caller answers "overloaded" at once.
    bool submit(std::function<void()> job);

private:
    void run();

    const size_t max_queued_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

// One session's calls that are answered on a runner thread and delivered on the session's
// loop. cancel() and destruction guarantee no delivery afterwards: deliveries check, on the
// loop thread, that their call is still pending; a runner thread only posts to the loop
// while holding a lock that destruction also takes.
class OffloadedCalls {
public:
    using Delivery = std::function<void(SessionCallback&)>;

    // `timeout`: how long a call may take from run() to its answer. The work gets it as a
    // deadline; a job still queued when it passes is not run, its caller gets `refused`.
    OffloadedCalls(BlockingJobRunner& runner, PostToLoop post, std::chrono::milliseconds timeout);
    ~OffloadedCalls();
    OffloadedCalls(const OffloadedCalls&) = delete;
    OffloadedCalls& operator=(const OffloadedCalls&) = delete;

    // On the loop thread. `work(deadline)` runs on a runner thread and returns what to
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
        std::mutex post_mutex;     // held by runner threads while they post, and by destruction
        bool closed = false;
        PostToLoop post;
        // Loop thread only.
        std::unordered_map<uint64_t, SessionCallback*> pending;
    };

    static void deliver(const std::shared_ptr<Shared>& shared, uint64_t id, const Delivery& delivery);

    BlockingJobRunner& runner_;
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

// A session that runs a backend's blocking operations on the runner: what a network
// backend without a native asynchronous client needs.
class OffloadedEnrollmentSession final : public EnrollmentSession {
public:
    OffloadedEnrollmentSession(DeadlineBoundOperations& backend, BlockingJobRunner& runner, PostToLoop post,
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
