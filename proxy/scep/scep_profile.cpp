// ScepProfile / ScepGeneration: upstream choice (round-robin, health-aware) and profile lookup.
#include "proxy/scep/scep_profile.h"

namespace scepproxy::proxy {

std::optional<size_t> ScepProfile::find_upstream(size_t start, uint32_t tried) const {
    const size_t count = upstreams.size();
    const bool checked = targets->profile->health_check.has_value();
    std::optional<size_t> fallback;
    for (size_t step = 0; step < count; ++step) {
        const size_t index = (start + step) % count;
        if (tried & (1u << index)) continue;
        if (!checked || targets->upstreams[index].health->up()) return index;
        if (!fallback && tried == 0) fallback = index;
    }
    return fallback;
}

ScepProfile* ScepGeneration::find_profile(std::string_view name) {
    for (auto& p : profiles)
        if (p.targets->profile->name == name) return &p;
    return nullptr;
}

}  // namespace scepproxy::proxy
