// Tests for the buffered-bytes budget (charges, credits, parked waiters, a bound changed at run time) and the wait queue.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "proxy/limits/buffer_wait_queue.h"
#include "proxy/limits/buffered_bytes_budget.h"

using namespace scepproxy::proxy;

TEST_CASE("charges fit the bound exactly; a credit makes room again", "[buffered_bytes_budget]") {
    BufferedBytesBudget budget(100);
    CHECK(budget.try_charge(60));
    CHECK(budget.try_charge(40));
    CHECK_FALSE(budget.try_charge(1));
    CHECK(budget.used() == 100);
    budget.credit(30);
    CHECK_FALSE(budget.try_charge(31));  // all or nothing
    CHECK(budget.used() == 70);
    CHECK(budget.try_charge(30));
    CHECK_FALSE(budget.try_charge(SIZE_MAX));  // no wrap-around
}

TEST_CASE("requests still starting leave room for growth; requests under way may use all of it",
          "[buffered_bytes_budget]") {
    BufferedBytesBudget budget(100);
    budget.set_max(100, 30);
    budget.set_wake(0, [] {});
    CHECK(budget.try_charge(40, BufferUse::request_start));
    CHECK(budget.try_charge(30, BufferUse::request_start));
    CHECK_FALSE(budget.try_charge(1, BufferUse::request_start));  // the last 30 are kept for growth
    CHECK(budget.try_charge(30, BufferUse::growth));
    CHECK(budget.used() == 100);
    budget.credit(60);
    CHECK_FALSE(budget.park(0, 31, BufferUse::request_start));  // 40 used: 31 more would eat into the 30
    CHECK(budget.park(0, 30, BufferUse::request_start));
    CHECK(budget.park(0, 60, BufferUse::growth));
    int woken = 0;
    budget.set_wake(1, [&] { ++woken; });
    REQUIRE(budget.try_charge(30, BufferUse::request_start));
    CHECK_FALSE(budget.park(1, 1, BufferUse::request_start));
    budget.set_max(100, 20);  // less kept back: the waiter may fit now
    CHECK(woken == 1);
    CHECK(budget.try_charge(10, BufferUse::request_start));
}

TEST_CASE("a parked waiter is woken once by the credit after it parked", "[buffered_bytes_budget]") {
    BufferedBytesBudget budget(100);
    int woken[2] = {0, 0};
    budget.set_wake(0, [&] { ++woken[0]; });
    budget.set_wake(1, [&] { ++woken[1]; });
    REQUIRE(budget.try_charge(100));
    CHECK_FALSE(budget.park(0, 50));  // no room: wait for a wake
    budget.credit(10);                // woken, though 10 is not enough: it asks again and parks again
    CHECK(woken[0] == 1);
    CHECK(woken[1] == 0);  // it never parked
    CHECK_FALSE(budget.park(0, 50));
    budget.credit(40);
    CHECK(woken[0] == 2);
    budget.credit(50);  // nobody parked any more
    CHECK(woken[0] == 2);
}

TEST_CASE("a waiter parking after the room appeared goes on at once", "[buffered_bytes_budget]") {
    BufferedBytesBudget budget(100);
    int woken = 0;
    budget.set_wake(0, [&] { ++woken; });
    REQUIRE(budget.try_charge(100));
    CHECK_FALSE(budget.try_charge(20));
    budget.credit(20);  // between the refused charge and the park: no lost wake-up
    CHECK(budget.park(0, 20));
    CHECK(woken == 0);
    budget.credit(10);  // it didn't stay parked
    CHECK(woken == 0);
}

TEST_CASE("raising the bound wakes the parked waiters; lowering it refuses new charges", "[buffered_bytes_budget]") {
    BufferedBytesBudget budget(100);
    int woken = 0;
    budget.set_wake(3, [&] { ++woken; });
    REQUIRE(budget.try_charge(100));
    CHECK_FALSE(budget.park(3, 50));
    budget.set_max(150);
    CHECK(woken == 1);
    CHECK(budget.try_charge(50));
    budget.set_max(120);  // below what is held: nothing more until it drops under the bound
    budget.credit(20);
    CHECK_FALSE(budget.try_charge(1));
    budget.credit(20);
    CHECK(budget.try_charge(10));
    CHECK(budget.used() == 120);
}

TEST_CASE("a waiter that went away is not woken", "[buffered_bytes_budget]") {
    BufferedBytesBudget budget(10);
    int woken = 0;
    budget.set_wake(0, [&] { ++woken; });
    REQUIRE(budget.try_charge(10));
    CHECK_FALSE(budget.park(0, 5));
    budget.unpark(0);
    budget.credit(10);
    CHECK(woken == 0);
}

TEST_CASE("the bound-reached warning is due at most once per interval", "[buffered_bytes_budget]") {
    BufferedBytesBudget budget(10);
    CHECK(budget.time_to_warn(1'000, 10'000));
    CHECK_FALSE(budget.time_to_warn(5'000, 10'000));
    CHECK(budget.time_to_warn(11'000, 10'000));
}

TEST_CASE("threads charging and crediting at once never exceed the bound", "[buffered_bytes_budget]") {
    constexpr size_t kMax = 1000;
    BufferedBytesBudget budget(kMax);
    std::atomic<size_t> peak{0};
    std::atomic<bool> exceeded{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            const size_t bytes = 100 + 50 * static_cast<size_t>(t);
            for (int i = 0; i < 20000; ++i) {
                if (!budget.try_charge(bytes)) continue;
                const size_t used = budget.used();
                if (used > kMax) exceeded = true;
                size_t seen = peak.load();
                while (used > seen && !peak.compare_exchange_weak(seen, used)) {
                }
                budget.credit(bytes);
            }
        });
    for (auto& thread : threads) thread.join();
    CHECK_FALSE(exceeded);
    CHECK(peak <= kMax);
    CHECK(budget.used() == 0);
}

TEST_CASE("the wait queue keeps arrival order, one place each, and removes in O(1)", "[buffer_wait_queue]") {
    int a = 0, b = 0, c = 0;
    BufferWaitQueue<int> queue;
    CHECK(queue.front() == nullptr);
    queue.push_back(&a);
    queue.push_back(&b);
    queue.push_back(&a);  // already waiting: keeps its place
    queue.push_back(&c);
    CHECK(queue.size() == 3);
    CHECK(queue.front() == &a);
    queue.remove(&a);
    CHECK(queue.front() == &b);
    CHECK_FALSE(queue.contains(&a));
    queue.move_to_front(&c);  // served first and still waiting
    CHECK(queue.front() == &c);
    queue.remove(&c);
    queue.remove(&c);  // no longer there: nothing happens
    CHECK(queue.front() == &b);
    queue.remove(&b);
    CHECK(queue.empty());
}
