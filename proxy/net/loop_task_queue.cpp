// LoopTaskQueue: an eventfd registered in the loop; posters append under a mutex and write the eventfd.
#include "proxy/net/loop_task_queue.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace scepproxy::proxy {

LoopTaskQueue::LoopTaskQueue(event_base* base) : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_fd_ < 0) return;
    wake_event_ = event_new(base, wake_fd_, EV_READ | EV_PERSIST, &LoopTaskQueue::on_wake, this);
    event_add(wake_event_, nullptr);
}

LoopTaskQueue::~LoopTaskQueue() {
    if (wake_event_) event_free(wake_event_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void LoopTaskQueue::post(std::function<void()> task) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        tasks_.push_back(std::move(task));
    }
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void LoopTaskQueue::on_wake(int fd, short, void* arg) {
    uint64_t count;
    [[maybe_unused]] const ssize_t n = ::read(fd, &count, sizeof count);
    static_cast<LoopTaskQueue*>(arg)->run_pending();
}

void LoopTaskQueue::run_pending() {
    std::vector<std::function<void()>> tasks;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
}

}  // namespace scepproxy::proxy
