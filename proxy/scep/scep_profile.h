// ScepProfile / ScepGeneration: a profile's upstreams, CA answer cache and fetch coalescer as one worker's SCEP requests see them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "proxy/scep/ca_answer_cache.h"
#include "proxy/scep/ca_fetch_coalescer.h"
#include "proxy/scep/profile_certificates.h"
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
    // The upstreams' certificate groups (several upstreams only); null where nobody publishes them.
    ProfileCertificates* certificates = nullptr;

    // The next upstream round-robin among those in service and in neither `tried` nor `excluded`
    // (bit i: upstreams[i]; excluded: those that can't serve this request). Without health
    // checks every upstream counts as in service. With them and none in service, a first attempt
    // (`tried` empty) takes the next one anyway: a stale state never locks a profile out.
    // nullopt when there is none to try.
    std::optional<size_t> pick_upstream(uint32_t tried, uint32_t excluded = 0) {
        return find_upstream(next_upstream++, tried, excluded);
    }
    // Whether pick_upstream(tried, excluded) would find one, without moving the round-robin on.
    bool can_pick_upstream(uint32_t tried, uint32_t excluded = 0) const {
        return find_upstream(next_upstream, tried, excluded).has_value();
    }
    // Whether one of `among` is in service (always, without health checks).
    bool any_in_service(uint32_t among) const;
    // The groups requests must be routed by (see UpstreamCertificateGroups::routes), or null:
    // one upstream, nothing known yet, or every upstream holding the same certificates.
    std::shared_ptr<const UpstreamCertificateGroups> routing_groups() const;

private:
    std::optional<size_t> find_upstream(size_t start, uint32_t tried, uint32_t excluded) const;
};

// The profiles of one configuration generation. A request holds it (shared_ptr) from its start to
// its answer, so a reload while it runs doesn't change its course.
struct ScepGeneration {
    std::vector<ScepProfile> profiles;

    ScepProfile* find_profile(std::string_view name);
};

}  // namespace scepproxy::proxy
