// Tests for BlockingTaskPool: tasks run once on the pool's threads, a full or stopped pool refuses, stop() drops what waits.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "base/blocking_task_pool.h"
#include "test/unit/base/gate.h"

namespace scepproxy {

using test::Gate;

TEST_CASE("task pool: each task runs once, on the pool's threads, and a full queue refuses", "[task_pool]") {
    std::atomic<int> ran{0};
    std::atomic<bool> on_caller_thread{false};
    const std::thread::id caller = std::this_thread::get_id();
    {
        BlockingTaskPool pool(2, 16);
        for (int i = 0; i < 10; ++i) {
            REQUIRE(pool.submit([&] {
                if (std::this_thread::get_id() == caller) on_caller_thread = true;
                ++ran;
            }));
        }
        while (ran.load() < 10) std::this_thread::yield();
    }
    CHECK(ran.load() == 10);
    CHECK_FALSE(on_caller_thread.load());

    BlockingTaskPool small(1, 1);
    Gate hold;
    std::atomic<bool> started{false};
    REQUIRE(small.submit([&] {
        started = true;
        hold.wait();
    }));
    while (!started.load()) std::this_thread::yield();
    CHECK(small.submit([] {}));         // the one queue slot
    CHECK_FALSE(small.submit([] {}));   // full
    hold.open();
}

TEST_CASE("task pool: stop() lets the running task finish, drops the waiting ones, and refuses more", "[task_pool]") {
    BlockingTaskPool pool(1, 4);
    Gate hold;
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    std::atomic<int> queued_ran{0};
    REQUIRE(pool.submit([&] {
        started = true;
        hold.wait();
        finished = true;
    }));
    while (!started.load()) std::this_thread::yield();
    REQUIRE(pool.submit([&] { ++queued_ran; }));
    REQUIRE(pool.submit([&] { ++queued_ran; }));
    std::thread opener([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        hold.open();
    });
    pool.stop();   // returns once the running task is done
    opener.join();
    CHECK(finished.load());
    CHECK(queued_ran.load() == 0);
    CHECK_FALSE(pool.submit([] {}));
    pool.stop();   // idempotent; the destructor stops again
}

TEST_CASE("task pool: a dropped task's captures are destroyed, outside the pool's lock", "[task_pool]") {
    // A capture that submits from its destructor would deadlock if the queue were cleared under the lock.
    struct SubmitsWhenDestroyed {
        BlockingTaskPool* pool;
        std::shared_ptr<std::atomic<bool>> refused;
        ~SubmitsWhenDestroyed() {
            if (pool) *refused = !pool->submit([] {});
        }
    };
    BlockingTaskPool pool(1, 4);
    Gate hold;
    std::atomic<bool> started{false};
    REQUIRE(pool.submit([&] {
        started = true;
        hold.wait();
    }));
    while (!started.load()) std::this_thread::yield();
    auto refused = std::make_shared<std::atomic<bool>>(false);
    auto capture = std::make_shared<SubmitsWhenDestroyed>(SubmitsWhenDestroyed{&pool, refused});
    REQUIRE(pool.submit([capture] {}));
    capture.reset();   // the queued task holds the last reference
    std::thread opener([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        hold.open();
    });
    pool.stop();   // drops the queued task while the running one still holds the only thread
    opener.join();
    CHECK(refused->load());
}

}  // namespace scepproxy
