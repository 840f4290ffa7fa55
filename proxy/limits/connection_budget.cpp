// ConnectionBudget: a compare-and-swap reservation, and a lost-wake-up-free handshake for parked listeners.
#include "proxy/limits/connection_budget.h"

namespace scepproxy::proxy {

ConnectionBudget::ConnectionBudget(size_t max_connections, size_t waiters)
    : max_(max_connections), waiters_(std::make_unique<Waiter[]>(waiters)), waiter_count_(waiters) {}

bool ConnectionBudget::try_reserve() {
    size_t open = open_.load();
    while (open < max_)
        if (open_.compare_exchange_weak(open, open + 1)) return true;
    return false;
}

// Sequentially consistent on both sides: either this release sees the waiter's `parked` flag and
// wakes it, or the waiter's re-check in park() sees the room this release made.
void ConnectionBudget::release() {
    const size_t before = open_.fetch_sub(1);
    if (before < max_) return;  // there was room already: nobody is parked for this one
    for (size_t i = 0; i < waiter_count_; ++i)
        if (waiters_[i].parked.exchange(false) && waiters_[i].wake) waiters_[i].wake();
}

bool ConnectionBudget::park(size_t index) {
    waiters_[index].parked.store(true);
    if (open_.load() >= max_) return false;
    // Room appeared meanwhile: resume unless a release() already took the flag (its wake is on the way).
    return waiters_[index].parked.exchange(false);
}

}  // namespace scepproxy::proxy
