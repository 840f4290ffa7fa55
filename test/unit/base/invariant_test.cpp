// SCEPPROXY_INVARIANT: release behaviour (count, reporter with backoff) in every build; the fatal one in a child.
// Release behaviour here whatever the build: what ships is RelWithDebInfo, where invariants count and report.
#define SCEPPROXY_INVARIANTS_FATAL 0
#include "base/invariant.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace {

struct Report {
    std::string what;
    std::string file;
    int line;
    uint64_t violations_here;
};

std::vector<Report> g_reports;

void record_report(const char* what, const char* file, int line, uint64_t violations_here) {
    g_reports.push_back(Report{what, file, line, violations_here});
}

// Installs record_report for one test case and puts the previous reporter back after it.
struct RecordingReporter {
    RecordingReporter() : previous(scepproxy::set_invariant_reporter(&record_report)) { g_reports.clear(); }
    ~RecordingReporter() { scepproxy::set_invariant_reporter(previous); }
    scepproxy::InvariantReporter previous;
};

int checked_value(int value) {
    SCEPPROXY_INVARIANT(value >= 0, "checked_value given a negative value");
    return value;
}

}  // namespace

TEST_CASE("a violated invariant is counted and reported with its text, file and line") {
    RecordingReporter reporter;
    const uint64_t before = scepproxy::invariant_violations();
    scepproxy::InvariantSite site{"the pool is empty", "/somewhere/else/pool.cpp", 42};
    scepproxy::report_invariant_violation(site);
    CHECK(scepproxy::invariant_violations() == before + 1);
    CHECK(site.violations == 1);
    REQUIRE(g_reports.size() == 1);
    CHECK(g_reports[0].what == "the pool is empty");
    CHECK(g_reports[0].file == "/somewhere/else/pool.cpp");  // outside the source tree: unchanged
    CHECK(g_reports[0].line == 42);
    CHECK(g_reports[0].violations_here == 1);
}

TEST_CASE("a site's violations are all counted, reported on the 1st, 2nd, 4th, 8th...") {
    RecordingReporter reporter;
    const uint64_t before = scepproxy::invariant_violations();
    scepproxy::InvariantSite site{"hot", "hot.cpp", 1};
    for (int i = 0; i < 100; ++i) scepproxy::report_invariant_violation(site);
    CHECK(scepproxy::invariant_violations() == before + 100);
    std::vector<uint64_t> reported;
    for (const Report& report : g_reports) reported.push_back(report.violations_here);
    CHECK(reported == std::vector<uint64_t>{1, 2, 4, 8, 16, 32, 64});
    // Another site's first violation is reported, whatever the first one's count.
    scepproxy::InvariantSite other{"cold", "cold.cpp", 2};
    scepproxy::report_invariant_violation(other);
    REQUIRE(g_reports.size() == 8);
    CHECK(g_reports.back().what == "cold");
}

TEST_CASE("the macro does nothing when the condition holds and reports the site when it doesn't") {
    RecordingReporter reporter;
    const uint64_t before = scepproxy::invariant_violations();
    CHECK(checked_value(3) == 3);
    CHECK(scepproxy::invariant_violations() == before);
    CHECK(g_reports.empty());
    CHECK(checked_value(-1) == -1);  // release: execution carries on after the report
    CHECK(scepproxy::invariant_violations() == before + 1);
    REQUIRE(g_reports.size() == 1);
    CHECK(g_reports[0].what == "checked_value given a negative value");
    // Relative to the source tree, as the log shows it.
    CHECK(g_reports[0].file == "test/unit/base/invariant_test.cpp");
    CHECK(g_reports[0].line > 0);
}

TEST_CASE("without a reporter, violations are still counted") {
    const scepproxy::InvariantReporter previous = scepproxy::set_invariant_reporter(nullptr);
    const uint64_t before = scepproxy::invariant_violations();
    scepproxy::InvariantSite site{"unreported", "x.cpp", 3};
    scepproxy::report_invariant_violation(site);
    CHECK(scepproxy::invariant_violations() == before + 1);
    scepproxy::set_invariant_reporter(previous);
}

TEST_CASE("the fatal behaviour prints the invariant on stderr and aborts") {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::dup2(pipe_fds[1], STDERR_FILENO);
        ::close(pipe_fds[0]);
        std::signal(SIGABRT, SIG_DFL);  // Catch2's handler would report the abort as this test's failure
        scepproxy::abort_on_invariant_violation("a response begun twice", __FILE__, 7);
    }
    ::close(pipe_fds[1]);
    std::string output;
    char buffer[512];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
        output.append(buffer, static_cast<size_t>(n));
    ::close(pipe_fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    CHECK(output == "scepproxy: invariant violated: a response begun twice (test/unit/base/invariant_test.cpp:7)\n");
}
