// Invariant violations: the process-wide count, the reporter hook, and the fatal report on stderr.
#include "base/invariant.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace scepproxy {
namespace {

std::atomic<uint64_t> g_violations{0};
std::atomic<InvariantReporter> g_reporter{nullptr};

// __FILE__ is the absolute path the build passed to the compiler: shown relative to the source
// tree (this file's own path says where that is), so log lines don't depend on the build machine.
const char* relative_to_source_tree(const char* file) {
    static constexpr std::string_view kThisFile = "base/invariant.cpp";
    const std::string_view here = __FILE__;
    if (here.size() < kThisFile.size()) return file;
    const std::string_view root = here.substr(0, here.size() - kThisFile.size());
    return std::string_view(file).starts_with(root) ? file + root.size() : file;
}

bool is_power_of_two(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

void report_invariant_violation(InvariantSite& site) {
    g_violations.fetch_add(1, std::memory_order_relaxed);
    const uint64_t here = site.violations.fetch_add(1, std::memory_order_relaxed) + 1;
    if (!is_power_of_two(here)) return;
    if (const InvariantReporter reporter = g_reporter.load(std::memory_order_acquire))
        reporter(site.what, relative_to_source_tree(site.file), site.line, here);
}

void abort_on_invariant_violation(const char* what, const char* file, int line) {
    // One write(2) from a stack buffer: the process may be in a bad way already.
    char message[1024];
    const int length = std::snprintf(message, sizeof message, "scepproxy: invariant violated: %s (%s:%d)\n", what,
                                     relative_to_source_tree(file), line);
    if (length > 0) {
        [[maybe_unused]] const ssize_t written =
            ::write(STDERR_FILENO, message, std::min(static_cast<size_t>(length), sizeof message - 1));
    }
    std::abort();
}

InvariantReporter set_invariant_reporter(InvariantReporter reporter) {
    return g_reporter.exchange(reporter, std::memory_order_acq_rel);
}

uint64_t invariant_violations() { return g_violations.load(std::memory_order_relaxed); }

}  // namespace scepproxy
