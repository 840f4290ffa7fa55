// Running blocking store calls off the event loop: OffloadedCalls' delivery protocol, the generic offloaded session.
#include "token/offloaded_session.h"

#include <string>
#include <utility>

namespace scepproxy::token {

OffloadedCalls::OffloadedCalls(BlockingTaskPool& pool, PostToLoop post, std::chrono::milliseconds timeout)
    : pool_(pool), timeout_(timeout), shared_(std::make_shared<Shared>()) {
    shared_->post = std::move(post);
}

OffloadedCalls::~OffloadedCalls() {
    {
        std::lock_guard lock(shared_->post_mutex);
        shared_->closed = true;
    }
    shared_->pending.clear();  // deliveries already posted find nothing to call
}

size_t OffloadedCalls::pending() const { return shared_->pending.size(); }

void OffloadedCalls::deliver(const std::shared_ptr<Shared>& shared, uint64_t id, const Delivery& delivery) {
    const auto it = shared->pending.find(id);
    if (it == shared->pending.end()) return;  // cancelled
    SessionCallback* done = it->second;
    // Forgotten before the call: the callback may start (or cancel) other calls from inside.
    shared->pending.erase(it);
    delivery(*done);
}

void OffloadedCalls::run(SessionCallback& done, std::function<Delivery(Deadline)> work,
                         std::function<Delivery(std::string)> refused) {
    const uint64_t id = next_id_++;
    shared_->pending.emplace(id, &done);
    const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
    auto job = [shared = shared_, id, deadline, timeout = timeout_, work = std::move(work), refused]() {
        Delivery delivery;
        if (std::chrono::steady_clock::now() >= deadline) {
            delivery = refused("store busy: no free worker thread within " + std::to_string(timeout.count()) + " ms");
        } else {
            delivery = work(deadline);
        }
        std::lock_guard lock(shared->post_mutex);
        if (shared->closed) return;
        shared->post([shared, id, delivery = std::move(delivery)] { deliver(shared, id, delivery); });
    };
    if (!pool_.submit(std::move(job))) {
        // Answered inline, as the contract allows.
        deliver(shared_, id, refused("store overloaded: too many requests waiting for it"));
    }
}

void OffloadedCalls::cancel(SessionCallback& done) {
    std::erase_if(shared_->pending, [&done](const auto& entry) { return entry.second == &done; });
}

namespace {

// Runs `ask` (a blocking operation) off the loop and hands its answer to `answer`.
// A refused call answers a default Answer (store_unavailable / unavailable) with the reason.
template <class Query, class Answer>
void offload(OffloadedCalls& calls, SessionCallback& done, DeadlineBoundOperations& backend, const Query& query,
             Answer (DeadlineBoundOperations::*ask)(const Query&, Deadline),
             void (SessionCallback::*answer)(const Answer&)) {
    calls.run(
        done,
        [&backend, query, ask, answer](Deadline deadline) -> OffloadedCalls::Delivery {
            Answer result = (backend.*ask)(query, deadline);
            return [result = std::move(result), answer](SessionCallback& cb) { (cb.*answer)(result); };
        },
        [answer](std::string message) -> OffloadedCalls::Delivery {
            Answer result;
            result.message = std::move(message);
            return [result = std::move(result), answer](SessionCallback& cb) { (cb.*answer)(result); };
        });
}

}  // namespace

OffloadedEnrollmentSession::OffloadedEnrollmentSession(DeadlineBoundOperations& backend, BlockingTaskPool& pool,
                                                       PostToLoop post, std::chrono::milliseconds timeout)
    : backend_(backend), calls_(pool, std::move(post), timeout) {}

void OffloadedEnrollmentSession::check_access(const AccessQuery& query, SessionCallback& done) {
    offload(calls_, done, backend_, query, &DeadlineBoundOperations::check_access, &SessionCallback::on_access_decided);
}

void OffloadedEnrollmentSession::bind_transaction(const BindQuery& query, SessionCallback& done) {
    offload(calls_, done, backend_, query, &DeadlineBoundOperations::bind_transaction,
            &SessionCallback::on_transaction_bound);
}

void OffloadedEnrollmentSession::finish_transaction(const FinishQuery& query, SessionCallback& done) {
    offload(calls_, done, backend_, query, &DeadlineBoundOperations::finish_transaction,
            &SessionCallback::on_transaction_finished);
}

}  // namespace scepproxy::token
