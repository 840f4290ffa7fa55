// Fuzz target: the same HTTP request stream fed one-shot, in input-derived pieces and byte by byte must give the same requests, bodies and errors.
#include <string_view>
#include <vector>

#include "test/fuzz/fuzz_check.h"
#include "test/fuzz/http_request_feed.h"
#include "test/fuzz/input_pieces.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const http::HttpLimits limits = fuzz::fuzz_request_limits();

    http::HttpRequestParser fresh(limits);
    const size_t whole[] = {size};
    const fuzz::RequestFeedOutcome one_shot = fuzz::feed_requests(fresh, limits, input, whole);

    // One parser for both split feeds, reset in between like a connection's: stale state would show as a difference.
    http::HttpRequestParser reused(limits);
    const std::vector<size_t> pieces = fuzz::pseudo_random_pieces(input);
    fuzz::check_same_outcome(one_shot, fuzz::feed_requests(reused, limits, input, pieces), "pseudo-random pieces");
    const std::vector<size_t> bytes = fuzz::one_byte_pieces(input);
    fuzz::check_same_outcome(one_shot, fuzz::feed_requests(reused, limits, input, bytes), "one byte at a time");
    return 0;
}
