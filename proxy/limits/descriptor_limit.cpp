// Descriptor limit: setrlimit(RLIMIT_NOFILE) and the descriptor budget of a configuration.
#include "proxy/limits/descriptor_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace scepproxy::proxy {
namespace {
constexpr uint64_t kReservedDescriptors = 64;  // stdio, log, store, listeners, control loop
constexpr uint64_t kPerWorkerDescriptors = 8;  // event loop (epoll, eventfds), listening socket, store
}  // namespace

DescriptorLimit raise_descriptor_limit() {
    DescriptorLimit result;
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        result.error = std::string("getrlimit: ") + std::strerror(errno);
        return result;
    }
    result.soft_before = result.soft = limit.rlim_cur;
    result.hard = limit.rlim_max;
    if (limit.rlim_cur == limit.rlim_max) return result;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        result.error = std::string("setrlimit: ") + std::strerror(errno);
        return result;
    }
    result.soft = limit.rlim_max;
    return result;
}

uint64_t descriptors_needed(const conf::Config& config) {
    uint64_t idle_upstream = 0;
    for (const auto& profile : config.profiles)
        idle_upstream += uint64_t{profile.max_idle_connections} * profile.upstreams.size();
    const uint64_t workers = config.workers;
    return uint64_t{config.limits.max_connections} * 2 + workers * (idle_upstream + kPerWorkerDescriptors) +
           kReservedDescriptors;
}

}  // namespace scepproxy::proxy
