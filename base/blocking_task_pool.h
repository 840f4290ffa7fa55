// BlockingTaskPool: a few threads taking blocking work (store calls, challenge fetches) from one bounded queue, off every event loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace scepproxy {

class BlockingTaskPool {
public:
    BlockingTaskPool(unsigned threads, size_t max_queued);
    ~BlockingTaskPool();  // stop()
    BlockingTaskPool(const BlockingTaskPool&) = delete;
    BlockingTaskPool& operator=(const BlockingTaskPool&) = delete;

    // Thread-safe. False when max_queued tasks are already waiting, or after stop(): the
    // caller answers "overloaded" at once.
    bool submit(std::function<void()> task);
    // Drops the tasks still waiting unrun, lets running ones finish (bounded by their own
    // timeouts), joins the threads. Idempotent.
    void stop();

private:
    void run();

    const size_t max_queued_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace scepproxy
