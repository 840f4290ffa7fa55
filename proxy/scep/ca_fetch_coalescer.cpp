// CaFetchCoalescer: a short list of fetches in flight, each with the requests waiting for it.
#include "proxy/scep/ca_fetch_coalescer.h"

#include <algorithm>

namespace scepproxy::proxy {

bool CaFetchCoalescer::wait_or_lead(std::string_view operation, std::string_view message, CaFetchWaiter* self,
                                    uint64_t group) {
    for (Fetch& fetch : fetches_) {
        if (fetch.group == group && fetch.operation == operation && fetch.message == message) {
            fetch.waiters.push_back(self);
            return true;
        }
    }
    fetches_.push_back(Fetch{std::string(operation), std::string(message), group, self, {}});
    return false;
}

void CaFetchCoalescer::finish(CaFetchWaiter* leader) {
    auto it = std::find_if(fetches_.begin(), fetches_.end(), [&](const Fetch& f) { return f.leader == leader; });
    if (it == fetches_.end()) return;
    // Forgotten before anyone is told: a waiter that looks again may lead the next fetch itself.
    const std::vector<CaFetchWaiter*> waiters = std::move(it->waiters);
    fetches_.erase(it);
    for (CaFetchWaiter* waiter : waiters) waiter->on_ca_fetch_done();
}

void CaFetchCoalescer::forget(CaFetchWaiter* who, bool tell_waiters) {
    for (auto it = fetches_.begin(); it != fetches_.end(); ++it) {
        Fetch& fetch = *it;
        if (fetch.leader == who) {
            if (tell_waiters)
                finish(who);
            else
                fetches_.erase(it);
            return;
        }
        auto& waiters = fetch.waiters;
        waiters.erase(std::remove(waiters.begin(), waiters.end(), who), waiters.end());
    }
}

}  // namespace scepproxy::proxy
