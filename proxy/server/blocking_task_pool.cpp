// BlockingTaskPool: a FIFO under a mutex, threads that wait on a condition variable.
#include "proxy/server/blocking_task_pool.h"

namespace scepproxy::proxy {

BlockingTaskPool::BlockingTaskPool(unsigned threads, size_t max_queued) : max_queued_(max_queued) {
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
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
        queue_.clear();
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
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

}  // namespace scepproxy::proxy
