// Descriptor limit: raising RLIMIT_NOFILE at start and how many descriptors the configured limits can use.
#pragma once

#include <cstdint>
#include <string>

#include "conf/config.h"

namespace scepproxy::proxy {

struct DescriptorLimit {
    uint64_t soft_before = 0;
    uint64_t soft = 0;  // after raising it to the hard limit
    uint64_t hard = 0;
    std::string error;  // getrlimit/setrlimit failure; soft is then what it was
};

// Raises the soft RLIMIT_NOFILE to the hard limit (a process may always do that).
DescriptorLimit raise_descriptor_limit();

// Descriptors the daemon may need at most: every client connection with one upstream connection
// in flight, every worker's idle upstream pools full, and a fixed reserve (listeners, event loops,
// store, log, TLS files).
uint64_t descriptors_needed(const conf::Config& config);

}  // namespace scepproxy::proxy
