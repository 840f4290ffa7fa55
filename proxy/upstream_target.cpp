// Resolving the configured upstream URLs' hosts to socket addresses (once, at start-up).
#include "proxy/upstream_target.h"

namespace scepproxy::proxy {

bool resolve_profile_targets(const conf::Config& config, std::vector<ProfileTargets>* out, std::string* error) {
    out->clear();
    for (const auto& profile : config.profiles) {
        ProfileTargets targets;
        targets.profile = &profile;
        for (const auto& upstream : profile.upstreams) {
            UpstreamTarget target;
            target.config = &upstream;
            std::string resolve_error;
            target.addresses = resolve_tcp_address(upstream.host, upstream.port, &resolve_error);
            if (target.addresses.empty()) {
                *error = "profile '" + profile.name + "': upstream " + upstream.url + ": " + resolve_error;
                return false;
            }
            target.label = upstream.host + ":" + std::to_string(upstream.port);
            targets.upstreams.push_back(std::move(target));
        }
        out->push_back(std::move(targets));
    }
    return true;
}

}  // namespace scepproxy::proxy
