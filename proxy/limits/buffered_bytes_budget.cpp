// BufferedBytesBudget: a compare-and-swap charge, and the lost-wake-up-free park/credit handshake of ConnectionBudget.
#include "proxy/limits/buffered_bytes_budget.h"

#include <algorithm>

namespace scepproxy::proxy {

BufferedBytesBudget::BufferedBytesBudget(size_t max_bytes) : max_(max_bytes) {}

void BufferedBytesBudget::set_wake(size_t index, std::function<void()> wake) {
    while (waiters_.size() <= index) waiters_.push_back(std::make_unique<Waiter>());
    waiters_[index]->wake = std::move(wake);
}

void BufferedBytesBudget::set_max(size_t max_bytes, size_t kept_for_growth) {
    const size_t kept_before = kept_for_growth_.exchange(kept_for_growth);
    const size_t max_before = max_.exchange(max_bytes);
    if (max_bytes > max_before || kept_for_growth < kept_before) wake_parked();
}

size_t BufferedBytesBudget::limit_for(BufferUse use) const {
    const size_t max = max_.load();
    return use == BufferUse::request_start ? max - std::min(max, kept_for_growth_.load()) : max;
}

bool BufferedBytesBudget::try_charge(size_t bytes, BufferUse use) {
    const size_t limit = limit_for(use);
    size_t used = used_.load();
    while (bytes <= limit && used <= limit - bytes)
        if (used_.compare_exchange_weak(used, used + bytes)) return true;
    return false;
}

// Sequentially consistent on both sides: either this credit sees the waiter counted in parked_
// and wakes it, or the waiter's re-check in park() sees the room this credit made.
void BufferedBytesBudget::credit(size_t bytes) {
    used_.fetch_sub(bytes);
    if (parked_.load() != 0) wake_parked();
}

void BufferedBytesBudget::wake_parked() {
    for (const auto& waiter : waiters_)
        if (waiter->parked.exchange(false)) {
            parked_.fetch_sub(1);
            if (waiter->wake) waiter->wake();
        }
}

bool BufferedBytesBudget::park(size_t index, size_t wanted, BufferUse use) {
    if (index >= waiters_.size()) return false;  // nobody to wake: a set_wake() is missing
    if (!waiters_[index]->parked.exchange(true)) parked_.fetch_add(1);
    const size_t limit = limit_for(use);
    if (wanted > limit || used_.load() > limit - wanted) return false;
    // Room appeared meanwhile: go on unless a credit() already took the flag (its wake is on the way).
    if (!waiters_[index]->parked.exchange(false)) return false;
    parked_.fetch_sub(1);
    return true;
}

void BufferedBytesBudget::unpark(size_t index) {
    if (index >= waiters_.size()) return;
    if (waiters_[index]->parked.exchange(false)) parked_.fetch_sub(1);
    waiters_[index]->wake = nullptr;
}

bool BufferedBytesBudget::time_to_warn(int64_t now_ns, int64_t interval_ns) {
    int64_t last = last_warning_ns_.load();
    if (last != 0 && now_ns - last < interval_ns) return false;
    return last_warning_ns_.compare_exchange_strong(last, now_ns);
}

}  // namespace scepproxy::proxy
