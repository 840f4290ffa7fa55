// RequestOutcome: one finished request as the metrics count it.
#pragma once

#include <string_view>

namespace scepproxy::proxy {

// One finished request, for metrics.
struct RequestOutcome {
    std::string_view operation;  // "-" when the request never got that far
    int status = 0;
    std::string_view reason;  // "forwarded", "cache_hit", or why it was answered locally
    double seconds = 0;
};

}  // namespace scepproxy::proxy
