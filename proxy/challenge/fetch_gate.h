// FetchGate: a per-profile limit on concurrent challenge fetches, with a bounded wait for a free slot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace scepproxy::challenge {

class FetchGate {
public:
    explicit FetchGate(unsigned max_concurrent) : max_concurrent_(max_concurrent) {}
    FetchGate(const FetchGate&) = delete;
    FetchGate& operator=(const FetchGate&) = delete;

    // Takes a slot, waiting until one is free or `deadline` passes (false then). Waiters are
    // not strictly first-come first-served; each waits at most until its own deadline.
    bool acquire(std::chrono::steady_clock::time_point deadline);
    void release();
    unsigned in_use() const;

private:
    const unsigned max_concurrent_;
    mutable std::mutex mutex_;
    std::condition_variable freed_;
    unsigned in_use_ = 0;
};

// Holds one slot for its lifetime.
class FetchSlot {
public:
    explicit FetchSlot(FetchGate& gate) : gate_(gate) {}
    ~FetchSlot() { gate_.release(); }
    FetchSlot(const FetchSlot&) = delete;
    FetchSlot& operator=(const FetchSlot&) = delete;

private:
    FetchGate& gate_;
};

}  // namespace scepproxy::challenge
