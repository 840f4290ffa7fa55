// CaFetchCoalescer: single-flight for GetCACert/GetCACaps misses: one upstream fetch per answer at a time on a worker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace scepproxy::proxy {

// A request that can wait for another request's fetch of the same CA answer.
class CaFetchWaiter {
public:
    // The fetch it waited for ended (its answer is in the cache, or it failed): look again.
    virtual void on_ca_fetch_done() = 0;

protected:
    ~CaFetchWaiter() = default;
};

// Many devices asking for the CA certificate at once (a rollout, a renewal wave) would each miss
// an empty or expired cache and each send the upstream a request; instead the first fetches and
// the others wait for its answer. Per worker and profile, so no locks.
class CaFetchCoalescer {
public:
    // True: a fetch of this answer is in flight and `self` now waits for it (on_ca_fetch_done
    // later). False: none is, and `self` leads one: it must call finish() when it ends.
    // `group`: the certificate group the answer is for (CachedAnswer::group).
    bool wait_or_lead(std::string_view operation, std::string_view message, CaFetchWaiter* self, uint64_t group = 0);
    // The leader's fetch ended (answer stored or not): its waiters are told, in the order they came.
    void finish(CaFetchWaiter* leader);
    // `who` goes away (its request was aborted): a waiter stops waiting; a leader's fetch ends as
    // by finish(), its waiters told only if `tell_waiters` (not while the worker is torn down).
    void forget(CaFetchWaiter* who, bool tell_waiters = true);

    size_t fetches_in_flight() const { return fetches_.size(); }

private:
    struct Fetch {
        std::string operation;
        std::string message;
        uint64_t group = 0;
        CaFetchWaiter* leader = nullptr;
        std::vector<CaFetchWaiter*> waiters;
    };
    std::vector<Fetch> fetches_;
};

}  // namespace scepproxy::proxy
