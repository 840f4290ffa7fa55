// UpstreamTarget / ProfileTargets: each profile's upstreams with addresses resolved once at start-up.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/net/socket_address.h"
#include "proxy/net/tls_context.h"
#include "proxy/upstream/upstream_health.h"

namespace scepproxy::proxy {

struct UpstreamTarget {
    const conf::UpstreamConfig* config = nullptr;
    std::vector<SocketAddress> addresses;    // tried in order on connect failure
    std::string label;                       // the configured name ("host:port" by default): bounded, a log field
    SSL_CTX* tls_context = nullptr;          // https: the profile's context; null for http
    std::unique_ptr<UpstreamHealth> health;  // shared by every worker
};

struct ProfileTargets {
    const conf::ProfileConfig* profile = nullptr;
    std::vector<UpstreamTarget> upstreams;
    SslCtxPtr tls_context;  // for the profile's https upstreams; null when it has none
};

// Resolves every profile's upstreams and makes the TLS context of those with https upstreams;
// on failure returns false and sets *error.
bool resolve_profile_targets(const conf::Config& config, std::vector<ProfileTargets>* out, std::string* error);

}  // namespace scepproxy::proxy
