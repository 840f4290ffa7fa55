// LoopTaskQueue: lets other threads run a function on one event loop's thread (eventfd wake-up, FIFO).
#pragma once

#include <functional>
#include <mutex>
#include <vector>

struct event;
struct event_base;

namespace scepproxy::proxy {

class LoopTaskQueue {
public:
    explicit LoopTaskQueue(event_base* base);
    ~LoopTaskQueue();  // tasks not yet run are dropped
    LoopTaskQueue(const LoopTaskQueue&) = delete;
    LoopTaskQueue& operator=(const LoopTaskQueue&) = delete;

    bool valid() const { return wake_fd_ >= 0; }
    // Thread-safe. The task runs later on the loop's thread, never inside post().
    void post(std::function<void()> task);

private:
    static void on_wake(int fd, short what, void* arg);
    void run_pending();

    int wake_fd_ = -1;
    event* wake_event_ = nullptr;
    std::mutex mutex_;  // guards tasks_ only: taken by posters and once per wake-up
    std::vector<std::function<void()>> tasks_;
};

}  // namespace scepproxy::proxy
