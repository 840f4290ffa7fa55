// ProxyMetrics: families with their help texts, per-profile handles, and the text exposition.
#include "proxy/telemetry/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "proxy/telemetry/invariant_reporting.h"

namespace scepproxy::proxy {
namespace {

// Latency buckets (seconds): sub-millisecond proxying up to NDES answers that take seconds.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                 0.25,   0.5,   1,      2.5,   5,    10,    30};

}  // namespace

size_t operation_label_index(std::string_view operation) {
    for (size_t i = 0; i + 1 < kOperationLabels.size(); ++i)
        if (kOperationLabels[i] == operation) return i;
    return kOperationLabels.size() - 1;  // "none"
}

ProxyMetrics::ProxyMetrics(const conf::Config& config)
    : requests(prometheus::BuildCounter()
                   .Name("scepproxy_requests_total")
                   .Help("SCEP requests answered, by operation and HTTP status")
                   .Register(*registry_)),
      request_duration(prometheus::BuildHistogram()
                           .Name("scepproxy_request_duration_seconds")
                           .Help("Time from a complete request head to the end of its answer")
                           .Register(*registry_)),
      rejections(prometheus::BuildCounter()
                     .Name("scepproxy_rejections_total")
                     .Help("Requests answered by the proxy itself instead of the upstream, by reason")
                     .Register(*registry_)),
      ca_cache(prometheus::BuildCounter()
                   .Name("scepproxy_ca_cache_total")
                   .Help("GetCACert/GetCACaps lookups in the answer cache")
                   .Register(*registry_)),
      connections(prometheus::BuildGauge()
                      .Name("scepproxy_connections")
                      .Help("Open client connections, by listener")
                      .Register(*registry_)),
      config_reloads(prometheus::BuildCounter()
                         .Name("scepproxy_config_reloads_total")
                         .Help("Configuration reloads (SIGHUP), by result")
                         .Register(*registry_)),
      upstream_certificate_expiry(
          prometheus::BuildGauge()
              .Name("scepproxy_upstream_certificate_expiry_timestamp_seconds")
              .Help("notAfter (Unix seconds) of an upstream's GetCACert certificates, the earliest per role "
                    "(ca, ra_signing, ra_encryption, ra)")
              .Register(*registry_)),
      upstream_certificate_changes(
          prometheus::BuildCounter()
              .Name("scepproxy_upstream_certificate_changes_total")
              .Help("Times an upstream's GetCACert certificates changed (log: upstream_certificates_changed)")
              .Register(*registry_)),
      upstream_certificate_fetches(
          prometheus::BuildCounter()
              .Name("scepproxy_upstream_certificate_fetches_total")
              .Help("Background GetCACert fetches of each upstream's certificates, by outcome (ok, failed, unreadable)")
              .Register(*registry_)),
      upstream_certificate_groups(
          prometheus::BuildGauge()
              .Name("scepproxy_upstream_certificate_groups")
              .Help("Distinct CA/RA certificate sets among a profile's upstreams whose certificates are known")
              .Register(*registry_)),
      upstream_certificate_mixed_allowed(
          prometheus::BuildGauge()
              .Name("scepproxy_upstream_certificate_mixed_allowed")
              .Help("1 if the profile sets allow_mixed_ra: its upstreams may hold different RA certificates")
              .Register(*registry_)),
      ca_cache_hit(ca_cache.Add({{"result", "hit"}})),
      ca_cache_miss(ca_cache.Add({{"result", "miss"}})),
      ca_cache_stale(ca_cache.Add({{"result", "stale"}})),
      scep_connections(connections.Add({{"listener", "scep"}})),
      config_reload_success(config_reloads.Add({{"result", "success"}})),
      config_reload_failure(config_reloads.Add({{"result", "failure"}})),
      upstream_requests_(prometheus::BuildCounter()
                             .Name("scepproxy_upstream_requests_total")
                             .Help("Exchanges with upstream SCEP servers, by profile and outcome")
                             .Register(*registry_)),
      upstream_duration_(prometheus::BuildHistogram()
                             .Name("scepproxy_upstream_duration_seconds")
                             .Help("Time from sending a request upstream to the end of its answer")
                             .Register(*registry_)),
      upstream_up_(
          prometheus::BuildGauge()
              .Name("scepproxy_upstream_up")
              .Help("1 if the upstream is in service, 0 if it is taken out (health checks, refused connections)")
              .Register(*registry_)),
      pki_status_(prometheus::BuildCounter()
                      .Name("scepproxy_pki_status_total")
                      .Help("CertRep answers seen from upstreams, by profile, request type and pkiStatus")
                      .Register(*registry_)),
      challenge_fetches_(prometheus::BuildCounter()
                             .Name("scepproxy_challenge_fetch_total")
                             .Help("Dynamic challenge password fetches from NDES mscep_admin, by profile and outcome")
                             .Register(*registry_)) {
    for (size_t i = 0; i < kOperationLabels.size(); ++i)
        request_duration_by_operation[i] =
            &request_duration.Add({{"operation", std::string(kOperationLabels[i])}}, kLatencyBuckets);
    auto& timeout_family = prometheus::BuildCounter()
                               .Name("scepproxy_timeouts_total")
                               .Help("Client connection deadlines that expired (answered 408 or closed), by deadline")
                               .Register(*registry_);
    for (size_t i = 0; i < kTimeoutReasons.size(); ++i)
        timeouts[i] = &timeout_family.Add({{"reason", std::string(kTimeoutReasons[i])}});
    refused_client_connection_limit =
        &prometheus::BuildCounter()
             .Name("scepproxy_connections_refused_total")
             .Help(
                 "Client connections closed at accept, by reason (client_connection_limit: the client's "
                 "address group had limits.per_client.max_connections open)")
             .Register(*registry_)
             .Add({{"reason", "client_connection_limit"}});
    prometheus::BuildGauge()
        .Name("scepproxy_build_info")
        .Help("Build information; the value is always 1")
        .Register(*registry_)
        .Add({{"version", SCEPPROXY_VERSION}})
        .Set(1);

    auto& store_operations = prometheus::BuildCounter()
                                 .Name("scepproxy_store_operations_total")
                                 .Help(
                                     "Enrollment store operations, by backend, operation and outcome "
                                     "(cache_hit: answered by a worker's cache)")
                                 .Register(*registry_);
    auto& store_duration = prometheus::BuildHistogram()
                               .Name("scepproxy_store_duration_seconds")
                               .Help("Time the enrollment store backend took to answer, by backend and operation")
                               .Register(*registry_);
    for (const token::StoreOperation operation : token::all_store_operations()) {
        const auto op = static_cast<size_t>(operation);
        for (const token::StoreOutcome outcome : token::all_store_outcomes())
            store.operations[op][static_cast<size_t>(outcome)] =
                &store_operations.Add({{"backend", config.store.backend},
                                       {"op", token::to_string(operation)},
                                       {"outcome", token::to_string(outcome)}});
        store.duration[op] =
            &store_duration.Add({{"backend", config.store.backend}, {"op", token::to_string(operation)}},
                                kLatencyBuckets);
    }
}

ProfileMetrics ProxyMetrics::resolve_profile(const conf::ProfileConfig& profile) {
    ProfileMetrics m;
    if (profile.challenge.type == conf::ChallengeType::dynamic)
        for (size_t i = 0; i < challenge::kChallengeOutcomeCount; ++i)
            m.challenge_fetches[i] = &challenge_fetches_.Add(
                {{"profile", profile.name},
                 {"outcome", challenge::to_string(static_cast<challenge::ChallengeOutcome>(i))}});
    {
        std::lock_guard lock(challenge_counters_mutex_);
        challenge_counters_[profile.name] = m.challenge_fetches;
    }
    for (size_t type = 0; type < kPkiRequestTypeLabels.size(); ++type)
        for (size_t status = 0; status < kPkiStatusLabels.size(); ++status)
            m.pki_status[type][status] = &pki_status_.Add({{"profile", profile.name},
                                                           {"message_type", std::string(kPkiRequestTypeLabels[type])},
                                                           {"status", std::string(kPkiStatusLabels[status])}});
    for (size_t i = 0; i < kUpstreamOutcomeCount; ++i)
        m.upstream_requests[i] = &upstream_requests_.Add({{"profile", profile.name},
                                                          {"outcome", to_string(static_cast<UpstreamOutcome>(i))}});
    m.upstream_duration = &upstream_duration_.Add({{"profile", profile.name}}, kLatencyBuckets);
    for (const auto& upstream : profile.upstreams) {
        // Its UpstreamHealth sets it (a reloaded configuration's starts in service).
        m.upstream_up_leases.push_back(lease_upstream_up(profile.name, upstream.name));
        m.upstream_up.push_back(m.upstream_up_leases.back()->gauge());
    }
    return m;
}

std::shared_ptr<const SeriesLease> ProxyMetrics::lease_upstream_up(const std::string& profile,
                                                                   const std::string& upstream) {
    std::string key = profile;
    key += '\0';
    key += upstream;
    const std::lock_guard lock(upstream_up_mutex_);
    HeldLease& held = upstream_up_leases_[key];
    if (auto alive = held.lease.lock()) return alive;
    // The series may still be there, its last lease being released right now: this one takes it
    // over (Add returns the existing series), and the release leaves it.
    auto lease = std::make_shared<const SeriesLease>(*this, key,
                                                     &upstream_up_.Add({{"profile", profile}, {"upstream", upstream}}));
    held = HeldLease{lease, lease.get()};
    return lease;
}

void ProxyMetrics::release_upstream_up(const std::string& key, const SeriesLease* lease) {
    const std::lock_guard lock(upstream_up_mutex_);
    const auto found = upstream_up_leases_.find(key);
    if (found == upstream_up_leases_.end() || found->second.owner != lease) return;  // taken over
    upstream_up_leases_.erase(found);
    upstream_up_.Remove(lease->gauge());
}

SeriesLease::~SeriesLease() { metrics_.release_upstream_up(key_, this); }

void ProxyMetrics::count_challenge_fetch(std::string_view profile, challenge::ChallengeOutcome outcome) {
    std::lock_guard lock(challenge_counters_mutex_);
    const auto it = challenge_counters_.find(profile);
    if (it == challenge_counters_.end()) return;
    if (prometheus::Counter* counter = it->second[static_cast<size_t>(outcome)]) counter->Increment();
}

void StoreMetrics::record(token::StoreOperation operation, token::StoreOutcome outcome, double seconds) const {
    const auto op = static_cast<size_t>(operation);
    const auto result = static_cast<size_t>(outcome);
    if (op >= operations.size() || result >= operations[op].size()) return;
    operations[op][result]->Increment();
    // Only what reached the backend has a duration worth a bucket.
    if (outcome != token::StoreOutcome::cache_hit && outcome != token::StoreOutcome::allowed_on_error)
        duration[op]->Observe(seconds);
}

std::string ProxyMetrics::render() const {
    std::ostringstream out;
    std::vector<prometheus::MetricFamily> families = registry_->Collect();
    families.push_back(invariant_violations_metric());
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
}

void WorkerMetrics::count_timeout(std::string_view reason) {
    for (size_t i = 0; i < kTimeoutReasons.size(); ++i)
        if (kTimeoutReasons[i] == reason) metrics_.timeouts[i]->Increment();
}

void WorkerMetrics::count_request(const RequestOutcome& outcome) {
    const size_t op = operation_label_index(outcome.operation);
    metrics_.request_duration_by_operation[op]->Observe(outcome.seconds);
    if (outcome.status >= kMinStatus && outcome.status <= kMaxStatus) {
        prometheus::Counter*& counter = requests_[op][static_cast<size_t>(outcome.status - kMinStatus)];
        if (!counter)
            counter = &metrics_.requests.Add({{"operation", std::string(kOperationLabels[op])},
                                              {"code", std::to_string(outcome.status)}});
        counter->Increment();
    }
    if (outcome.reason == "forwarded" || outcome.reason == "cache_hit") return;
    auto it = rejections_.find(outcome.reason);
    if (it == rejections_.end())
        it = rejections_
                 .emplace(std::string(outcome.reason),
                          &metrics_.rejections.Add({{"reason", std::string(outcome.reason)}}))
                 .first;
    it->second->Increment();
}

}  // namespace scepproxy::proxy
