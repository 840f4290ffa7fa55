// Tests for running blocking store calls off the loop: delivery on the loop's thread, cancel, destruction, overload, deadlines.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "test/unit/base/gate.h"
#include "test/unit/token/test_session.h"
#include "token/offloaded_session.h"

namespace scepproxy::token {
namespace {

using scepproxy::test::Gate;
using test::RecordingCallback;
using test::TestLoop;
using namespace std::chrono_literals;

// Blocking operations that record where they ran and can be held at a gate.
class BlockingBackend final : public DeadlineBoundOperations {
public:
    AccessDecision check_access(const AccessQuery& query, Deadline deadline) override {
        ++started;
        thread = std::this_thread::get_id();
        seen_deadline = deadline;
        if (gate) gate->wait();
        AccessDecision decision;
        decision.verdict = AccessVerdict::allow;
        decision.profile = query.operation;  // echoes something of the query back
        return decision;
    }
    BindDecision bind_transaction(const BindQuery& query, Deadline) override {
        return {query.may_bind ? BindVerdict::bound : BindVerdict::not_bound, ""};
    }
    FinishResult finish_transaction(const FinishQuery&, Deadline) override { return {StoreStatus::conflict, "no"}; }

    Gate* gate = nullptr;
    std::atomic<int> started{0};
    std::thread::id thread;
    Deadline seen_deadline{};
};

AccessQuery query_named(const std::string& operation) {
    AccessQuery query;
    query.operation = operation;
    return query;
}

}  // namespace

TEST_CASE("offloaded session: answers are computed off the loop and delivered on it", "[offload]") {
    BlockingTaskPool pool(2, 16);
    BlockingBackend backend;
    TestLoop loop;
    OffloadedEnrollmentSession session(backend, pool, loop.poster(), 10s);

    RecordingCallback callback;
    const auto before = std::chrono::steady_clock::now();
    session.check_access(query_named("GetCACert"), callback);
    CHECK(callback.calls == 0);  // never inline: the work is on a pool thread
    REQUIRE(loop.run_until([&] { return callback.calls > 0; }));
    CHECK(callback.calls == 1);
    CHECK(callback.access.verdict == AccessVerdict::allow);
    CHECK(callback.access.profile == "GetCACert");
    CHECK(backend.thread != std::this_thread::get_id());
    // The work got the whole timeout as its deadline.
    CHECK(backend.seen_deadline >= before + 10s);

    BindQuery bind;
    bind.may_bind = false;
    RecordingCallback bound;
    session.bind_transaction(bind, bound);
    REQUIRE(loop.run_until([&] { return bound.calls > 0; }));
    CHECK(bound.bind.verdict == BindVerdict::not_bound);
    RecordingCallback finished;
    session.finish_transaction(FinishQuery{}, finished);
    REQUIRE(loop.run_until([&] { return finished.calls > 0; }));
    CHECK(finished.finish.status == StoreStatus::conflict);
}

TEST_CASE("offloaded session: after cancel the callback is never called", "[offload]") {
    BlockingTaskPool pool(1, 16);
    BlockingBackend backend;
    Gate gate;
    backend.gate = &gate;
    TestLoop loop;
    OffloadedEnrollmentSession session(backend, pool, loop.poster(), 10s);

    RecordingCallback cancelled;
    RecordingCallback kept;
    session.check_access(query_named("a"), cancelled);
    session.check_access(query_named("b"), kept);
    session.cancel(cancelled);
    gate.open();
    // Both answers are posted; only the one still wanted is delivered.
    REQUIRE(loop.run_until([&] { return loop.posted() == 2; }));
    loop.run_pending();
    CHECK(cancelled.calls == 0);
    CHECK(kept.calls == 1);
}

TEST_CASE("offloaded session: a session destroyed mid-call never posts again", "[offload]") {
    BlockingTaskPool pool(1, 16);
    BlockingBackend backend;
    Gate gate;
    backend.gate = &gate;
    std::atomic<int> posts{0};
    RecordingCallback callback;
    {
        OffloadedEnrollmentSession session(
            backend, pool, [&](std::function<void()>) { ++posts; }, 10s);
        session.check_access(query_named("a"), callback);
        while (backend.started.load() == 0) std::this_thread::yield();
    }
    gate.open();
    // The job finishes on the pool; wait for it by queueing one more behind it.
    std::atomic<bool> after{false};
    REQUIRE(pool.submit([&] { after = true; }));
    while (!after.load()) std::this_thread::yield();
    CHECK(posts.load() == 0);
    CHECK(callback.calls == 0);
}

TEST_CASE("offloaded session: a full queue is refused at once, with a reason", "[offload]") {
    BlockingTaskPool pool(1, 1);
    BlockingBackend backend;
    Gate gate;
    backend.gate = &gate;
    TestLoop loop;
    OffloadedEnrollmentSession session(backend, pool, loop.poster(), 10s);

    RecordingCallback running;
    RecordingCallback queued;
    RecordingCallback refused;
    session.check_access(query_named("running"), running);
    while (backend.started.load() == 0) std::this_thread::yield();
    session.check_access(query_named("queued"), queued);
    session.check_access(query_named("refused"), refused);
    CHECK(refused.calls == 1);  // inline: nothing to wait for
    CHECK(refused.access.verdict == AccessVerdict::store_unavailable);
    CHECK_THAT(refused.access.message, Catch::Contains("overloaded"));

    gate.open();
    REQUIRE(loop.run_until([&] { return running.calls + queued.calls == 2; }));
    CHECK(queued.access.verdict == AccessVerdict::allow);
}

TEST_CASE("offloaded session: a call whose deadline passed while queued is not run", "[offload]") {
    BlockingTaskPool pool(1, 16);
    BlockingBackend backend;
    Gate gate;
    backend.gate = &gate;
    TestLoop loop;
    OffloadedEnrollmentSession session(backend, pool, loop.poster(), 50ms);

    RecordingCallback blocking;
    RecordingCallback late;
    session.check_access(query_named("blocking"), blocking);
    while (backend.started.load() == 0) std::this_thread::yield();
    session.check_access(query_named("late"), late);
    // Its deadline passes while the only thread is busy; only then does the thread free up.
    std::this_thread::sleep_for(100ms);
    gate.open();
    REQUIRE(loop.run_until([&] { return blocking.calls + late.calls == 2; }));
    CHECK(backend.started.load() == 1);
    CHECK(late.access.verdict == AccessVerdict::store_unavailable);
    CHECK_THAT(late.access.message, Catch::Contains("busy"));
}

}  // namespace scepproxy::token
