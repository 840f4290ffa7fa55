// BufferedBytesBudget: the process-wide bound on request buffer bytes held by client connections (limits.max_buffered_bytes).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

namespace scepproxy::proxy {

// One atomic counter shared by every worker: a connection charges the storage its request
// buffers are about to grow into and credits it when they shrink or close, so the sum over all
// connections never exceeds the bound and nothing takes a lock. A charge that doesn't fit is
// refused: the connection stops reading and waits in its worker's queue; the worker parks here.
// The credit that makes room wakes the parked workers through their `wake` functions (called on
// the crediting thread; they post to their loop). The bound may change at run time (a reload):
// raising it wakes the parked workers too.
//
// Requests under way come first: bytes for a request still starting (its head not parsed yet) are
// only let in while they leave `kept_for_growth` of the bound free, room for the largest body a
// request under way may be charged at once. Otherwise connections that each hold a head, waiting
// for room for their bodies, could fill the bound between them and wait for each other until
// their deadlines.
enum class BufferUse { request_start, growth };

class BufferedBytesBudget {
public:
    explicit BufferedBytesBudget(size_t max_bytes = std::numeric_limits<size_t>::max());
    BufferedBytesBudget(const BufferedBytesBudget&) = delete;
    BufferedBytesBudget& operator=(const BufferedBytesBudget&) = delete;

    // Before any other thread uses the budget: how waiter `index` is woken (the function is called
    // on any thread and must not block).
    void set_wake(size_t index, std::function<void()> wake);
    void set_max(size_t max_bytes, size_t kept_for_growth = 0);

    bool try_charge(size_t bytes, BufferUse use = BufferUse::growth);
    void credit(size_t bytes);
    // Waiter `index` found no room for `wanted` bytes and stopped reading. True: there is room
    // after all and it should go on now; false: a later credit() (or a higher bound) wakes it.
    bool park(size_t index, size_t wanted, BufferUse use = BufferUse::growth);
    // Waiter `index` is going away (when no other thread uses the budget): it is never woken again.
    void unpark(size_t index);

    size_t used() const { return used_.load(); }
    size_t max() const { return max_.load(); }
    // True at most once per `interval_ns` (process-wide): for a warning while the bound is reached.
    bool time_to_warn(int64_t now_ns, int64_t interval_ns);

private:
    struct Waiter {
        std::atomic<bool> parked{false};
        std::function<void()> wake;
    };
    void wake_parked();
    size_t limit_for(BufferUse use) const;

    std::atomic<size_t> max_;
    std::atomic<size_t> kept_for_growth_{0};
    std::atomic<size_t> used_{0};
    std::atomic<size_t> parked_{0};                 // waiters parked now: credit() looks no further when none
    std::vector<std::unique_ptr<Waiter>> waiters_;  // one per worker, by index; fixed once they run
    std::atomic<int64_t> last_warning_ns_{0};
};

}  // namespace scepproxy::proxy
