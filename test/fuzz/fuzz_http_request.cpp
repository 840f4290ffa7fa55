// Fuzz target: one HTTP request stream parsed in one piece (pipelined requests included); the parser's contract is checked on every call.
#include <string_view>

#include "test/fuzz/fuzz_check.h"
#include "test/fuzz/http_request_feed.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace scepproxy;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const http::HttpLimits limits = fuzz::fuzz_request_limits();
    http::HttpRequestParser parser(limits);
    const size_t whole[] = {size};
    fuzz::feed_requests(parser, limits, input, whole);
    return 0;
}
