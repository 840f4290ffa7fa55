// ScepProfile / ScepGeneration: upstream choice (round-robin, health- and certificate-aware) and profile lookup.
#include "proxy/scep/scep_profile.h"

namespace scepproxy::proxy {

std::optional<size_t> ScepProfile::find_upstream(size_t start, uint32_t tried, uint32_t excluded) const {
    const size_t count = upstreams.size();
    const bool checked = targets->profile->health_check.has_value();
    std::optional<size_t> fallback;
    for (size_t step = 0; step < count; ++step) {
        const size_t index = (start + step) % count;
        if ((tried | excluded) & (1u << index)) continue;
        if (!checked || targets->upstreams[index].health->up()) return index;
        if (!fallback && tried == 0) fallback = index;
    }
    return fallback;
}

bool ScepProfile::any_in_service(uint32_t among) const {
    const bool checked = targets->profile->health_check.has_value();
    for (size_t index = 0; index < upstreams.size(); ++index)
        if ((among & (1u << index)) && (!checked || targets->upstreams[index].health->up())) return true;
    return false;
}

std::shared_ptr<const UpstreamCertificateGroups> ScepProfile::routing_groups() const {
    if (upstreams.size() < 2 || !certificates) return nullptr;
    std::shared_ptr<const UpstreamCertificateGroups> groups = certificates->current();
    // Built for this generation's upstreams: the sizes agree unless something is badly wrong.
    if (!groups || !groups->routes() || groups->upstream_count() != upstreams.size()) return nullptr;
    return groups;
}

ScepProfile* ScepGeneration::find_profile(std::string_view name) {
    for (auto& p : profiles)
        if (p.targets->profile->name == name) return &p;
    return nullptr;
}

}  // namespace scepproxy::proxy
