// ConnectionBudget: the process-wide count of open SCEP client connections against limits.max_connections.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>

namespace scepproxy::proxy {

// One atomic counter shared by every worker: a worker reserves a slot before each accept() and
// gives it back when that connection closes, so the sum over workers never exceeds the limit and
// nothing on the request path takes a lock. A worker that finds the budget full pauses its listener
// (the kernel backlog holds newcomers) and parks; the close that makes room again wakes the parked
// workers through their `wake` functions (called on the closing thread; they post to their loop).
class ConnectionBudget {
public:
    ConnectionBudget(size_t max_connections, size_t waiters);
    ConnectionBudget(const ConnectionBudget&) = delete;
    ConnectionBudget& operator=(const ConnectionBudget&) = delete;

    // Before the workers start: how waiter `index` is woken (thread-safe, must not block).
    void set_wake(size_t index, std::function<void()> wake) { waiters_[index].wake = std::move(wake); }

    bool try_reserve();
    void release();
    // The waiter found the budget full and paused accepting. True: there is room after all and the
    // waiter should resume now; false: a later release() will wake it.
    bool park(size_t index);

    size_t open() const { return open_.load(); }
    size_t max() const { return max_; }

private:
    struct Waiter {
        std::atomic<bool> parked{false};
        std::function<void()> wake;
    };

    const size_t max_;
    std::atomic<size_t> open_{0};
    std::unique_ptr<Waiter[]> waiters_;
    const size_t waiter_count_;
};

}  // namespace scepproxy::proxy
