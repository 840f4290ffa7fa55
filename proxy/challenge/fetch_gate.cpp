// FetchGate: a counting semaphore on a mutex and condition variable, waits bounded by a deadline.
#include "proxy/challenge/fetch_gate.h"

namespace scepproxy::challenge {

bool FetchGate::acquire(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!freed_.wait_until(lock, deadline, [this] { return in_use_ < max_concurrent_; })) return false;
    ++in_use_;
    return true;
}

void FetchGate::release() {
    {
        std::lock_guard lock(mutex_);
        --in_use_;
    }
    freed_.notify_one();
}

unsigned FetchGate::in_use() const {
    std::lock_guard lock(mutex_);
    return in_use_;
}

}  // namespace scepproxy::challenge
