// ScepProfile / ScepGeneration: a profile's upstreams, CA answer cache and fetch coalescer as one worker's SCEP requests see them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "proxy/scep/ca_answer_cache.h"
#include "proxy/scep/ca_fetch_coalescer.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/upstream/upstream_endpoint.h"
#include "proxy/upstream/upstream_target.h"

namespace scepproxy::proxy {

// One profile in one worker: its upstreams (round-robin start), its CA answers. No locks: per worker.
struct ScepProfile {
    const ProfileTargets* targets = nullptr;
    const ProfileMetrics* metrics = nullptr;
    std::vector<UpstreamEndpoint*> upstreams;  // [i] serves targets->upstreams[i]; owned by the worker
    size_t next_upstream = 0;
    CaAnswerCache ca_cache;
    CaFetchCoalescer ca_fetches;  // single-flight for ca_cache misses

    // The next upstream round-robin among those in service and not in `tried` (bit i: upstreams[i]).
    // Without health checks every upstream counts as in service. With them and none in service,
    // a first attempt (`tried` empty) takes the next one anyway: a stale state never locks a
    // profile out. nullopt when there is none to try.
    std::optional<size_t> pick_upstream(uint32_t tried) { return find_upstream(next_upstream++, tried); }
    // Whether pick_upstream(tried) would find one, without moving the round-robin on.
    bool can_pick_upstream(uint32_t tried) const { return find_upstream(next_upstream, tried).has_value(); }

private:
    std::optional<size_t> find_upstream(size_t start, uint32_t tried) const;
};

// The profiles of one configuration generation. A request holds it (shared_ptr) from its start to
// its answer, so a reload while it runs doesn't change its course.
struct ScepGeneration {
    std::vector<ScepProfile> profiles;

    ScepProfile* find_profile(std::string_view name);
};

}  // namespace scepproxy::proxy
