// UpstreamCertificateWatcher: every upstream's GetCACert fetched in the background, grouped and published; expiry and changes watched.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pkcs7/ca_certificates.h"
#include "proxy/net/connection_set.h"
#include "proxy/scep/profile_certificates.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/upstream/upstream_fetch.h"
#include "proxy/upstream/upstream_host.h"
#include "proxy/upstream/upstream_target.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

// One watcher for the process (on the control loop), like the health checker: NDES sees one
// GetCACert per upstream and ca_refresh_interval however many workers run. Each upstream's
// answer is read with pkcs7/ (roles by basicConstraints and key usage); the profile's groups are
// rebuilt and published to its ProfileCertificates after every fetch that brought certificates.
// A failed fetch keeps what the last good one brought: an upstream that is down keeps its
// certificates (whether it is in service is the health checks' call).
class UpstreamCertificateWatcher final : public UpstreamHost {
public:
    // What is known of one upstream, handed on to the watcher of a reloaded configuration, so
    // routing needn't wait for its first fetches. Matched by profile name and upstream URL.
    struct Known {
        std::string profile;
        std::string url;
        pkcs7::CaCertificates certificates;
    };
    static constexpr int64_t kExpiryWarningSeconds = int64_t{30} * 24 * 3600;
    // An upstream whose certificates are unknown (down since start) is asked again after this
    // (or ca_refresh_interval, if shorter), not only at the next refresh.
    static constexpr conf::Duration kUnknownRetry = std::chrono::seconds(10);

    // boards[i]: where profiles[i]'s groups are published. Both outlive the watcher.
    UpstreamCertificateWatcher(event_base* base, const std::vector<ProfileTargets>& profiles,
                               const std::vector<ProfileCertificates*>& boards, ProxyMetrics& metrics,
                               const std::vector<Known>& carried);
    ~UpstreamCertificateWatcher();  // takes its gauges out of the scrape
    UpstreamCertificateWatcher(const UpstreamCertificateWatcher&) = delete;
    UpstreamCertificateWatcher& operator=(const UpstreamCertificateWatcher&) = delete;

    void start();  // publishes what was carried over; the first fetches run at once
    std::vector<Known> known() const;

    event_base* base() const override { return base_; }
    bool draining() const override { return false; }  // its fetches keep nothing idle anyway
    void upstream_closed(UpstreamConnection* connection) override { reaper_.delete_later(connection); }

private:
    struct Profile;
    struct Upstream {
        Upstream(UpstreamCertificateWatcher& watcher, Profile& profile, const UpstreamTarget& target, size_t index);
        ~Upstream();
        Upstream(const Upstream&) = delete;
        Upstream& operator=(const Upstream&) = delete;
        Profile& profile;
        const UpstreamTarget& target;
        const size_t index;            // in the profile
        event* retry_event = nullptr;  // an upstream whose certificates are unknown is asked again soon
        UpstreamFetch fetch;
        std::optional<pkcs7::CaCertificates> certificates;  // the last good fetch's
        std::array<prometheus::Gauge*, 4> expiry{};         // by CertificateRole; null: no certificate of it
        prometheus::Counter* changes = nullptr;
        prometheus::Counter* fetched_ok = nullptr;
        prometheus::Counter* fetch_failed = nullptr;
        prometheus::Counter* fetch_unreadable = nullptr;
    };
    struct Profile {
        UpstreamCertificateWatcher* watcher = nullptr;
        const ProfileTargets* targets = nullptr;
        ProfileCertificates* board = nullptr;
        std::vector<std::unique_ptr<Upstream>> upstreams;
        event* refresh_event = nullptr;
        std::size_t published_groups = 0;  // group count last published (to log a change once)
        prometheus::Gauge* groups_gauge = nullptr;
        prometheus::Gauge* mixed_gauge = nullptr;
    };

    static void on_refresh(int fd, short what, void* arg);
    static void on_retry(int fd, short what, void* arg);
    static void on_requests(int fd, short what, void* arg);
    void refresh(Profile& profile);
    void fetch(Upstream& upstream);
    void fetched(Upstream& upstream, const UpstreamFetchResult& result);
    void retry_if_unknown(Upstream& upstream);
    void adopt_certificates(Upstream& upstream, pkcs7::CaCertificates certificates, bool fetched_now);
    void set_expiry_gauges(Upstream& upstream);
    void publish(Profile& profile);

    event_base* base_;
    ProxyMetrics& metrics_;
    ConnectionSet reaper_;             // frees closed fetch connections after the loop iteration
    event* requests_event_ = nullptr;  // takes the workers' refresh requests every second
    std::vector<std::unique_ptr<Profile>> profiles_;
};

// The certificates' SHA-256 fingerprints, sorted and joined with ',' (an answer's identity in logs).
std::string fingerprint_list(const pkcs7::CaCertificates& certificates);

}  // namespace scepproxy::proxy
