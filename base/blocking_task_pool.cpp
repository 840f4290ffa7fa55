// BlockingTaskPool: a FIFO under a mutex, threads that wait on a condition variable.
#include "base/blocking_task_pool.h"

namespace scepproxy {

BlockingTaskPool::BlockingTaskPool(unsigned threads, size_t max_queued) : max_queued_(max_queued) {
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

BlockingTaskPool::~BlockingTaskPool() { stop(); }

bool BlockingTaskPool::submit(std::function<void()> task) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || queue_.size() >= max_queued_) return false;
        queue_.push_back(std::move(task));
    }
    wake_.notify_one();
    return true;
}

void BlockingTaskPool::stop() {
    std::deque<std::function<void()>> dropped;
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        dropped.swap(queue_);
        threads.swap(threads_);
    }
    wake_.notify_all();
    for (std::thread& thread : threads) thread.join();
    // `dropped` is destroyed here, outside the lock: its captures may take locks of their own.
}

void BlockingTaskPool::run() {
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            task = std::move(queue_.front());
            queue_.pop_front();
        }
        task();
    }
}

}  // namespace scepproxy
