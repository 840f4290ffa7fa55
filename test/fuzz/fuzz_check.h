// FUZZ_CHECK: an invariant check for fuzz drivers that stays on in release builds (assert() does not) and aborts, so libFuzzer and the replay both see a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, what)                                                                             \
    do {                                                                                                        \
        if (!(condition)) {                                                                                     \
            std::fprintf(stderr, "%s:%d: fuzz check failed: %s: %s\n", __FILE__, __LINE__, #condition, (what)); \
            std::abort();                                                                                       \
        }                                                                                                       \
    } while (false)

// The entry point every driver defines; libFuzzer calls it, and so does replay_main.cpp.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace scepproxy::fuzz {

// Aborts with both descriptions when two feeds of the same input disagree (Outcome has == and describe()).
template <typename Outcome>
void check_same_outcome(const Outcome& expected, const Outcome& actual, const char* what) {
    if (expected == actual) return;
    std::fprintf(stderr, "fuzz check failed: %s\n--- one-shot:\n%s\n--- %s:\n%s\n", what, expected.describe().c_str(),
                 what, actual.describe().c_str());
    std::abort();
}

}  // namespace scepproxy::fuzz
