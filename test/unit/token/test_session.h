// TestSession: drives an EnrollmentSession from a test, playing the worker's event loop (TestLoop).
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "token/enrollment_store.h"

namespace scepproxy::token::test {

// How long a test waits for an asynchronous answer before calling it lost.
inline constexpr std::chrono::seconds kAnswerTimeout{20};

// Plays a worker's event loop: post() (any thread) queues a task, run_until() (the test's
// thread) runs them.
class TestLoop {
public:
    PostToLoop poster() {
        return [this](std::function<void()> task) {
            {
                std::lock_guard lock(mutex_);
                tasks_.push_back(std::move(task));
                ++posted_;
            }
            wake_.notify_all();
        };
    }

    // Runs posted tasks until `done()` or the timeout; true if done() became true.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = kAnswerTimeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            std::function<void()> task;
            {
                std::unique_lock lock(mutex_);
                if (!wake_.wait_until(lock, deadline, [this] { return !tasks_.empty(); })) return done();
                task = std::move(tasks_.front());
                tasks_.pop_front();
            }
            task();
        }
        return true;
    }

    // Runs what is queued now, without waiting.
    void run_pending() {
        run_until(
            [this] {
                std::lock_guard lock(mutex_);
                return tasks_.empty();
            },
            std::chrono::milliseconds(0));
    }

    size_t posted() {
        std::lock_guard lock(mutex_);
        return posted_;
    }

private:
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> tasks_;
    size_t posted_ = 0;
};

// Records what a session answered, and how many times.
class RecordingCallback final : public SessionCallback {
public:
    void on_access_decided(const AccessDecision& decision) override {
        ++calls;
        access = decision;
    }
    void on_transaction_bound(const BindDecision& decision) override {
        ++calls;
        bind = decision;
    }
    void on_transaction_finished(const FinishResult& result) override {
        ++calls;
        finish = result;
    }
    int calls = 0;
    AccessDecision access;
    BindDecision bind;
    FinishResult finish;
};

// A session on its own loop. try_* never use Catch (safe on other threads): nullopt when
// the answer didn't come exactly once in time. The plain forms REQUIRE that it did.
class TestSession {
public:
    explicit TestSession(EnrollmentStore& store) : loop_(std::make_unique<TestLoop>()) {
        session_ = store.open_session(loop_->poster());
    }
    ~TestSession() { session_.reset(); }

    explicit operator bool() const { return session_ != nullptr; }
    EnrollmentSession& session() { return *session_; }
    TestLoop& loop() { return *loop_; }

    std::optional<AccessDecision> try_check(const AccessQuery& query) {
        return ask([&](RecordingCallback& cb) { session_->check_access(query, cb); }, &RecordingCallback::access);
    }
    std::optional<BindDecision> try_bind(const BindQuery& query) {
        return ask([&](RecordingCallback& cb) { session_->bind_transaction(query, cb); }, &RecordingCallback::bind);
    }
    std::optional<FinishResult> try_finish(const FinishQuery& query) {
        return ask([&](RecordingCallback& cb) { session_->finish_transaction(query, cb); }, &RecordingCallback::finish);
    }

    AccessDecision check(const AccessQuery& query) { return required(try_check(query)); }
    BindDecision bind(const BindQuery& query) { return required(try_bind(query)); }
    FinishResult finish(const FinishQuery& query) { return required(try_finish(query)); }

private:
    template <class Answer>
    static Answer required(std::optional<Answer> answer) {
        INFO("the session did not answer exactly once within " << kAnswerTimeout.count() << " s");
        REQUIRE(answer);
        return *answer;
    }

    template <class Start, class Answer>
    std::optional<Answer> ask(Start&& start, Answer RecordingCallback::*field) {
        RecordingCallback callback;
        start(callback);
        const bool answered = loop_->run_until([&] { return callback.calls > 0; });
        loop_->run_pending();  // a second, wrong answer would be queued by now
        if (!answered || callback.calls != 1) {
            session_->cancel(callback);
            return std::nullopt;
        }
        return callback.*field;
    }

    std::unique_ptr<TestLoop> loop_;  // outlives the session, which posts to it
    std::unique_ptr<EnrollmentSession> session_;
};

}  // namespace scepproxy::token::test
