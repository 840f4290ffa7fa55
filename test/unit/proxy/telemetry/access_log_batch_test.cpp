// Tests for AccessLogBatch: lines wait for the end of the loop pass, stay whole and in order, and never pile up.
#include "proxy/telemetry/access_log_batch.h"

#include <event2/event.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <catch2/catch.hpp>

namespace scepproxy::proxy {
namespace {

// Points stdout at a pipe for the test's lifetime; read() returns what has been written so far.
class CapturedStdout {
public:
    CapturedStdout() {
        REQUIRE(::pipe(fds_) == 0);
        ::fcntl(fds_[0], F_SETFL, O_NONBLOCK);
        ::fcntl(fds_[1], F_SETPIPE_SZ, 1 << 20);
        saved_ = ::dup(STDOUT_FILENO);
        ::dup2(fds_[1], STDOUT_FILENO);
    }
    ~CapturedStdout() {
        ::dup2(saved_, STDOUT_FILENO);
        ::close(saved_);
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    std::string read() {
        std::string text;
        char buffer[65536];
        for (ssize_t n; (n = ::read(fds_[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
        return text;
    }

private:
    int fds_[2] = {-1, -1};
    int saved_ = -1;
};

TEST_CASE("access log lines are written after the loop pass that made them, whole and in order", "[access_log]") {
    CapturedStdout out;
    event_base* base = event_base_new();
    {
        AccessLogBatch batch(base);
        batch.install();
        REQUIRE(AccessLogBatch::current() == &batch);
        write_access_line("first line\n");
        write_access_line("second line\n");
        CHECK(out.read().empty());  // not yet: the loop hasn't finished its pass
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        CHECK(out.read() == "first line\nsecond line\n");
        write_access_line("third line\n");
    }  // destroyed with a line pending: written, and the thread has no batch any more
    CHECK(out.read() == "third line\n");
    CHECK(AccessLogBatch::current() == nullptr);
    write_access_line("no batch: at once\n");
    CHECK(out.read() == "no batch: at once\n");
    event_base_free(base);
}

TEST_CASE("a batch over its bound is written without waiting for the loop", "[access_log]") {
    CapturedStdout out;
    event_base* base = event_base_new();
    {
        AccessLogBatch batch(base);
        batch.install();
        const std::string line(299, 'x');
        std::string expected;
        while (expected.size() < AccessLogBatch::kMaxPendingBytes) {
            write_access_line(line + "\n");
            expected += line + "\n";
        }
        CHECK(out.read() == expected);                      // long lines and many of them: all whole, nothing lost
        write_access_line(std::string(10000, 'y') + "\n");  // one line longer than PIPE_BUF
        batch.flush();
        CHECK(out.read() == std::string(10000, 'y') + "\n");
    }
    event_base_free(base);
}

}  // namespace
}  // namespace scepproxy::proxy
