// SCEPPROXY_INVARIANT(condition, "what"): fatal in debug and sanitizer builds, logged and counted in release.
#pragma once

#include <atomic>
#include <cstdint>

// What a violated invariant does in this translation unit: 1 prints it and aborts, 0 counts it and
// calls the reporter. Fatal unless NDEBUG (the shipped RelWithDebInfo build) without sanitizers
// (SCEPPROXY_SANITIZED, set by CMake for SCEPPROXY_SANITIZE=ON). A file may define it to 0 or 1
// before including this header: the unit tests test the release behaviour in every build type.
#ifndef SCEPPROXY_INVARIANTS_FATAL
#if defined(NDEBUG) && !defined(SCEPPROXY_SANITIZED)
#define SCEPPROXY_INVARIANTS_FATAL 0
#else
#define SCEPPROXY_INVARIANTS_FATAL 1
#endif
#endif

// Usage, at a state transition that the code's own logic guarantees (never for untrusted input):
//     SCEPPROXY_INVARIANT(state_ == State::handling, "begin_response outside a request");
// `what` must be a string literal. On the hot path it costs the check and a predicted branch;
// the report is a cold call out of line. In release, execution continues after the report: the
// code after an invariant must still do something safe when it is false.
#define SCEPPROXY_INVARIANT(condition, what)        \
    do {                                            \
        if (!(condition)) [[unlikely]] {            \
            SCEPPROXY_INVARIANT_VIOLATED_("" what); \
        }                                           \
    } while (false)

#if SCEPPROXY_INVARIANTS_FATAL
#define SCEPPROXY_INVARIANT_VIOLATED_(what) ::scepproxy::abort_on_invariant_violation(what, __FILE__, __LINE__)
#else
// One site per use: its own count decides how often the reporter hears of it (see below).
#define SCEPPROXY_INVARIANT_VIOLATED_(what)                                                              \
    do {                                                                                                 \
        constinit static ::scepproxy::InvariantSite scepproxy_invariant_site_{what, __FILE__, __LINE__}; \
        ::scepproxy::report_invariant_violation(scepproxy_invariant_site_);                              \
    } while (false)
#endif

namespace scepproxy {

// Where an invariant is written, and how often it was violated there.
struct InvariantSite {
    const char* what;
    const char* file;
    int line;
    std::atomic<uint64_t> violations{0};
};

// Told of a violation: the daemon installs one that logs `invariant_violated` (base/ has no logger).
// `file` is relative to the source tree. Called from any thread; must not throw.
using InvariantReporter = void (*)(const char* what, const char* file, int line, uint64_t violations_here);

// The release behaviour: counts the violation (process-wide and at its site) and calls the
// reporter on the 1st, 2nd, 4th, 8th... violation of that site, so a violation on every request
// can't flood the log while the count stays exact.
[[gnu::cold, gnu::noinline]] void report_invariant_violation(InvariantSite& site);

// The debug and sanitizer behaviour: `invariant violated: what (file:line)` on stderr, then abort().
[[noreturn, gnu::cold, gnu::noinline]] void abort_on_invariant_violation(const char* what, const char* file, int line);

// Installs the reporter (nullptr: none; violations are still counted); returns the previous one.
// Set once at start-up, before the threads that may report start.
InvariantReporter set_invariant_reporter(InvariantReporter reporter);

// Violations counted since start (scepproxy_invariant_violations_total).
uint64_t invariant_violations();

}  // namespace scepproxy
