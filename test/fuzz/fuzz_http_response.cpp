// Fuzz target: an upstream response (any framing, interim 1xx, EOF) fed one-shot, in input-derived pieces and byte by byte must give the same head, body and verdict.
#include <string_view>
#include <vector>

#include "test/fuzz/fuzz_check.h"
#include "test/fuzz/http_response_feed.h"
#include "test/fuzz/input_pieces.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const http::HttpResponseLimits limits = fuzz::fuzz_response_limits();
    const size_t whole[] = {size};
    const std::vector<size_t> pieces = fuzz::pseudo_random_pieces(input);
    const std::vector<size_t> bytes = fuzz::one_byte_pieces(input);

    // One parser across every split exchange, restarted with begin() like a pooled connection's:
    // state left over from an earlier exchange would show as a difference from a fresh parser.
    http::HttpResponseParser reused(limits);
    for (bool response_to_head : {false, true}) {
        http::HttpResponseParser fresh(limits);
        const fuzz::ResponseFeedOutcome one_shot = fuzz::feed_response(fresh, limits, response_to_head, input, whole);
        fuzz::check_same_outcome(one_shot, fuzz::feed_response(reused, limits, response_to_head, input, pieces),
                                 "pseudo-random pieces");
        fuzz::check_same_outcome(one_shot, fuzz::feed_response(reused, limits, response_to_head, input, bytes),
                                 "one byte at a time");
    }
    return 0;
}
