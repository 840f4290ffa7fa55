// Gate: a latch a test's blocking task waits on until the test opens it.
#pragma once

#include <condition_variable>
#include <mutex>

namespace scepproxy::test {

class Gate {
public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        wake_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable wake_;
    bool open_ = false;
};

}  // namespace scepproxy::test
