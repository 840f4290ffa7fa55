// Resolving the configured upstream URLs' hosts to socket addresses (once, at start-up).
#include "proxy/upstream/upstream_target.h"

#include <algorithm>

namespace scepproxy::proxy {

bool resolve_profile_targets(const conf::Config& config, std::vector<ProfileTargets>* out, std::string* error) {
    out->clear();
    for (const auto& profile : config.profiles) {
        ProfileTargets targets;
        targets.profile = &profile;
        const bool any_https = std::any_of(profile.upstreams.begin(), profile.upstreams.end(),
                                           [](const conf::UpstreamConfig& u) { return u.scheme == "https"; });
        if (any_https) {
            std::string tls_error;
            targets.tls_context =
                make_upstream_tls_context(profile.tls.value_or(conf::UpstreamTlsConfig{}), &tls_error);
            if (!targets.tls_context) {
                *error = "profile '" + profile.name + "': " + tls_error;
                return false;
            }
        }
        for (const auto& upstream : profile.upstreams) {
            UpstreamTarget target;
            target.config = &upstream;
            std::string resolve_error;
            target.addresses = resolve_tcp_address(upstream.host, upstream.port, &resolve_error);
            if (target.addresses.empty()) {
                *error = "profile '" + profile.name + "': upstream " + upstream.url + ": " + resolve_error;
                return false;
            }
            target.label = upstream.name;
            target.health =
                std::make_unique<UpstreamHealth>(profile.name, upstream.name, profile.health_check.has_value());
            if (upstream.scheme == "https") target.tls_context = targets.tls_context.get();
            targets.upstreams.push_back(std::move(target));
        }
        out->push_back(std::move(targets));
    }
    return true;
}

}  // namespace scepproxy::proxy
