// UpstreamTarget / ProfileTargets: each profile's upstreams with addresses resolved once at start-up.
#pragma once

#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/socket_address.h"

namespace scepproxy::proxy {

struct UpstreamTarget {
    const conf::UpstreamConfig* config = nullptr;
    std::vector<SocketAddress> addresses;  // tried in order on connect failure
    std::string label;                     // "host:port", bounded: safe as a log field
};

struct ProfileTargets {
    const conf::ProfileConfig* profile = nullptr;
    std::vector<UpstreamTarget> upstreams;
};

// Resolves every profile's upstreams; on failure returns false and sets *error.
bool resolve_profile_targets(const conf::Config& config, std::vector<ProfileTargets>* out, std::string* error);

}  // namespace scepproxy::proxy
