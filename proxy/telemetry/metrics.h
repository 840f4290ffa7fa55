// ProxyMetrics: every Prometheus metric, declared once at start-up; WorkerMetrics: a worker's lock-free handles.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "base/label_enum.h"
#include "conf/config.h"
#include "proxy/challenge/challenge_outcome.h"
#include "proxy/telemetry/request_outcome.h"
#include "token/store_observer.h"

namespace scepproxy::proxy {

// The `outcome` label of scepproxy_upstream_requests_total.
// clang-format off: one label a line
#define SCEPPROXY_UPSTREAM_OUTCOMES(X) \
    X(ok)                              \
    X(connect_failed)                  \
    X(connect_timeout)                 \
    X(timeout)                         \
    X(closed)                          \
    X(protocol_error)                  \
    X(body_too_large)                  \
    X(tls_error)
// clang-format on
SCEPPROXY_LABEL_ENUM(UpstreamOutcome, SCEPPROXY_UPSTREAM_OUTCOMES)

// The `operation` label: the SCEP operations, "other", and "none" for requests that never named one.
constexpr std::array<std::string_view, 6> kOperationLabels = {"GetCACert",     "GetCACaps", "PKIOperation",
                                                              "GetNextCACert", "other",     "none"};
size_t operation_label_index(std::string_view operation);

// Labels of scepproxy_pki_status_total: the request types a CertRep answers, and what it said
// ("unparsable" when the upstream's answer was no readable CertRep).
constexpr std::array<std::string_view, 5> kPkiRequestTypeLabels = {"PKCSReq", "RenewalReq", "CertPoll", "GetCert",
                                                                   "GetCRL"};
constexpr std::array<std::string_view, 4> kPkiStatusLabels = {"SUCCESS", "FAILURE", "PENDING", "unparsable"};

// The `reason` label of scepproxy_timeouts_total: the connection deadlines.
constexpr std::array<std::string_view, 4> kTimeoutReasons = {"header_timeout", "body_timeout", "idle_timeout",
                                                             "send_timeout"};

// A series that stays in the scrape while some configuration has it: when the last
// configuration holding it is gone (a reload removed its upstream, and the requests that started
// before the reload are done), it is removed. Several configurations share one lease.
class SeriesLease {
public:
    SeriesLease(class ProxyMetrics& metrics, std::string key, prometheus::Gauge* gauge)
        : metrics_(metrics), key_(std::move(key)), gauge_(gauge) {}
    ~SeriesLease();
    SeriesLease(const SeriesLease&) = delete;
    SeriesLease& operator=(const SeriesLease&) = delete;
    prometheus::Gauge* gauge() const { return gauge_; }

private:
    class ProxyMetrics& metrics_;
    const std::string key_;
    prometheus::Gauge* const gauge_;
};

struct ProfileMetrics {
    // [request type][status], indices into the label arrays above.
    std::array<std::array<prometheus::Counter*, kPkiStatusLabels.size()>, kPkiRequestTypeLabels.size()> pki_status{};
    std::array<prometheus::Counter*, kUpstreamOutcomeCount> upstream_requests{};
    prometheus::Histogram* upstream_duration = nullptr;
    std::vector<prometheus::Gauge*> upstream_up;                         // one per upstream, in config order
    std::vector<std::shared_ptr<const SeriesLease>> upstream_up_leases;  // keep upstream_up's series
    // Dynamic challenge profiles only; null elsewhere.
    std::array<prometheus::Counter*, challenge::kChallengeOutcomeCount> challenge_fetches{};
};

// scepproxy_store_operations_total{backend,op,outcome} and scepproxy_store_duration_seconds{backend,op}
// for the configured backend, every label combination resolved at start-up. Thread-safe.
struct StoreMetrics {
    std::array<std::array<prometheus::Counter*, token::kStoreOutcomeCount>, token::kStoreOperationCount> operations{};
    std::array<prometheus::Histogram*, token::kStoreOperationCount> duration{};

    void record(token::StoreOperation operation, token::StoreOutcome outcome, double seconds) const;
};

class ProxyMetrics {
    // First member: the families below are registered in it as they are initialised.
    std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();

public:
    explicit ProxyMetrics(const conf::Config& config);
    ProxyMetrics(const ProxyMetrics&) = delete;
    ProxyMetrics& operator=(const ProxyMetrics&) = delete;

    std::string render() const;  // Prometheus text exposition format
    // A profile's handles, resolved once per configuration (at start-up and on each reload; a
    // series already there is reused, so counts carry across reloads). Thread-safe.
    ProfileMetrics resolve_profile(const conf::ProfileConfig& profile);
    // Thread-safe (the admin API's fetch threads); a profile without a dynamic challenge counts nothing.
    void count_challenge_fetch(std::string_view profile, challenge::ChallengeOutcome outcome);
    void count_config_reload(bool succeeded) {
        (succeeded ? config_reload_success : config_reload_failure).Increment();
    }

    prometheus::Family<prometheus::Counter>& requests;            // {operation,code}
    prometheus::Family<prometheus::Histogram>& request_duration;  // {operation}
    prometheus::Family<prometheus::Counter>& rejections;          // {reason}
    prometheus::Family<prometheus::Counter>& ca_cache;            // {result}
    prometheus::Family<prometheus::Gauge>& connections;           // {listener}
    prometheus::Family<prometheus::Counter>& config_reloads;      // {result}
    // Upstream CA/RA certificates, kept by the certificate watcher (control loop).
    prometheus::Family<prometheus::Gauge>& upstream_certificate_expiry;         // {profile,upstream,role}
    prometheus::Family<prometheus::Counter>& upstream_certificate_changes;      // {profile,upstream}
    prometheus::Family<prometheus::Counter>& upstream_certificate_fetches;      // {profile,upstream,outcome}
    prometheus::Family<prometheus::Gauge>& upstream_certificate_groups;         // {profile}
    prometheus::Family<prometheus::Gauge>& upstream_certificate_mixed_allowed;  // {profile}
    std::array<prometheus::Histogram*, kOperationLabels.size()> request_duration_by_operation{};
    prometheus::Counter& ca_cache_hit;
    prometheus::Counter& ca_cache_miss;
    prometheus::Counter& ca_cache_stale;  // served after every upstream failed
    prometheus::Gauge& scep_connections;
    prometheus::Counter& config_reload_success;
    prometheus::Counter& config_reload_failure;
    std::array<prometheus::Counter*, kTimeoutReasons.size()> timeouts{};  // {reason}, in kTimeoutReasons order
    prometheus::Counter* refused_client_connection_limit = nullptr;       // scepproxy_connections_refused_total
    StoreMetrics store;

private:
    friend class SeriesLease;
    using ChallengeCounters = std::array<prometheus::Counter*, challenge::kChallengeOutcomeCount>;

    std::shared_ptr<const SeriesLease> lease_upstream_up(const std::string& profile, const std::string& upstream);
    void release_upstream_up(const std::string& key, const SeriesLease* lease);
    std::mutex upstream_up_mutex_;
    struct HeldLease {
        std::weak_ptr<const SeriesLease> lease;
        const SeriesLease* owner = nullptr;  // the lease that removes the series when it goes
    };
    std::map<std::string, HeldLease, std::less<>> upstream_up_leases_;

    prometheus::Family<prometheus::Counter>& upstream_requests_;    // {profile,outcome}
    prometheus::Family<prometheus::Histogram>& upstream_duration_;  // {profile}
    prometheus::Family<prometheus::Gauge>& upstream_up_;            // {profile,upstream}
    prometheus::Family<prometheus::Counter>& pki_status_;           // {profile,message_type,status}
    prometheus::Family<prometheus::Counter>& challenge_fetches_;    // {profile,outcome}
    std::mutex challenge_counters_mutex_;  // a reload replaces entries while fetch threads count
    std::map<std::string, ChallengeCounters, std::less<>> challenge_counters_;
};

// One worker's view. A label combination seen for the first time is resolved once (Family::Add
// takes a lock); after that it's an array index or a per-worker map hit.
class WorkerMetrics {
public:
    explicit WorkerMetrics(ProxyMetrics& metrics) : metrics_(metrics) {}

    void count_request(const RequestOutcome& outcome);
    void connection_opened() { metrics_.scep_connections.Increment(); }
    void connection_closed() { metrics_.scep_connections.Decrement(); }
    void count_ca_cache(bool hit) { (hit ? metrics_.ca_cache_hit : metrics_.ca_cache_miss).Increment(); }
    void count_ca_cache_stale() { metrics_.ca_cache_stale.Increment(); }
    void count_timeout(std::string_view reason);
    void count_refused_connection() { metrics_.refused_client_connection_limit->Increment(); }

private:
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    static constexpr int kMinStatus = 100;
    static constexpr int kMaxStatus = 599;

    ProxyMetrics& metrics_;
    std::array<std::array<prometheus::Counter*, kMaxStatus - kMinStatus + 1>, kOperationLabels.size()> requests_{};
    std::unordered_map<std::string, prometheus::Counter*, StringHash, std::equal_to<>> rejections_;
};

}  // namespace scepproxy::proxy
