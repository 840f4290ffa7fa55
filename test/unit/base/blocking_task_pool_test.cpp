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

namespace {

// Submits a task that holds one of the pool's threads until `gate` opens, and returns once it
// runs. The flag returned is set when the task ends.
std::shared_ptr<std::atomic<bool>> occupy_a_thread(BlockingTaskPool& pool, Gate& gate) {
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto finished = std::make_shared<std::atomic<bool>>(false);
    REQUIRE(pool.submit([&gate, started, finished] {
        *started = true;
        gate.wait();
        *finished = true;
    }));
    while (!started->load()) std::this_thread::yield();
    return finished;
}

// Opens `gate` shortly, from another thread: for a call that blocks until it is open.
std::thread open_shortly(Gate& gate) {
    return std::thread([&gate] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        gate.open();
    });
}

}  // namespace

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
    occupy_a_thread(small, hold);
    CHECK(small.submit([] {}));        // the one queue slot
    CHECK_FALSE(small.submit([] {}));  // full
    hold.open();
}

TEST_CASE("task pool: stop() lets the running task finish, drops the waiting ones, and refuses more", "[task_pool]") {
    BlockingTaskPool pool(1, 4);
    Gate hold;
    const auto finished = occupy_a_thread(pool, hold);
    std::atomic<int> queued_ran{0};
    REQUIRE(pool.submit([&] { ++queued_ran; }));
    REQUIRE(pool.submit([&] { ++queued_ran; }));
    std::thread opener = open_shortly(hold);
    pool.stop();  // returns once the running task is done
    opener.join();
    CHECK(finished->load());
    CHECK(queued_ran.load() == 0);
    CHECK_FALSE(pool.submit([] {}));
    pool.stop();  // idempotent; the destructor stops again
}

TEST_CASE("task pool: a dropped task's captures are destroyed, outside the pool's lock", "[task_pool]") {
    // A capture that submits from its destructor would deadlock if the queue were cleared under the lock.
    struct SubmitsWhenDestroyed {
        BlockingTaskPool* pool;
        std::shared_ptr<std::atomic<bool>> refused;
        ~SubmitsWhenDestroyed() {
            *refused = !pool->submit([] {});
        }
    };
    BlockingTaskPool pool(1, 4);
    Gate hold;
    occupy_a_thread(pool, hold);
    auto refused = std::make_shared<std::atomic<bool>>(false);
    auto capture = std::make_shared<SubmitsWhenDestroyed>(&pool, refused);
    REQUIRE(pool.submit([capture] {}));
    capture.reset();  // the queued task holds the last reference
    std::thread opener = open_shortly(hold);
    pool.stop();  // drops the queued task while the running one still holds the only thread
    opener.join();
    CHECK(refused->load());
}

}  // namespace scepproxy
