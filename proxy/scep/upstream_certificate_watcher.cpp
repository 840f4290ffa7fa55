// UpstreamCertificateWatcher: per profile a refresh timer; per upstream a GetCACert fetch, its certificates, gauges and log lines.
#include "proxy/scep/upstream_certificate_watcher.h"

#include <event2/event.h>

#include <algorithm>
#include <span>

#include "base/clock.h"
#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {
namespace {

constexpr std::array<pkcs7::CertificateRole, 4> kRoles = {
    pkcs7::CertificateRole::ca, pkcs7::CertificateRole::ra_signing, pkcs7::CertificateRole::ra_encryption,
    pkcs7::CertificateRole::ra};

timeval to_timeval(conf::Duration d) {
    return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

}  // namespace

std::string fingerprint_list(const pkcs7::CaCertificates& certificates) {
    std::vector<std::string> fingerprints;
    for (const auto& certificate : certificates.certificates) fingerprints.push_back(certificate.sha256_fingerprint);
    std::sort(fingerprints.begin(), fingerprints.end());
    std::string list;
    for (const std::string& fingerprint : fingerprints) {
        if (!list.empty()) list += ',';
        list += fingerprint;
    }
    return list;
}

UpstreamCertificateWatcher::Upstream::Upstream(UpstreamCertificateWatcher& watcher, Profile& owner,
                                               const UpstreamTarget& upstream_target, size_t position)
    : profile(owner),
      target(upstream_target),
      index(position),
      retry_event(event_new(watcher.base_, -1, 0, &UpstreamCertificateWatcher::on_retry, this)),
      fetch(watcher, *owner.targets->profile, upstream_target) {
    const std::string& name = owner.targets->profile->name;
    auto fetches = [&](const char* outcome) {
        return &watcher.metrics_.upstream_certificate_fetches.Add(
            {{"profile", name}, {"upstream", target.label}, {"outcome", outcome}});
    };
    fetched_ok = fetches("ok");
    fetch_failed = fetches("failed");
    fetch_unreadable = fetches("unreadable");
    changes = &watcher.metrics_.upstream_certificate_changes.Add({{"profile", name}, {"upstream", target.label}});
}

UpstreamCertificateWatcher::Upstream::~Upstream() { event_free(retry_event); }

UpstreamCertificateWatcher::UpstreamCertificateWatcher(event_base* base, const std::vector<ProfileTargets>& profiles,
                                                       const std::vector<ProfileCertificates*>& boards,
                                                       ProxyMetrics& metrics, const std::vector<Known>& carried)
    : base_(base),
      metrics_(metrics),
      reaper_(base, [] {}),
      requests_event_(event_new(base, -1, EV_PERSIST, &UpstreamCertificateWatcher::on_requests, this)) {
    for (size_t i = 0; i < profiles.size(); ++i) {
        auto profile = std::make_unique<Profile>();
        profile->watcher = this;
        profile->targets = &profiles[i];
        profile->board = boards[i];
        profile->refresh_event =
            event_new(base, -1, EV_PERSIST, &UpstreamCertificateWatcher::on_refresh, profile.get());
        const conf::ProfileConfig& config = *profiles[i].profile;
        profile->groups_gauge = &metrics_.upstream_certificate_groups.Add({{"profile", config.name}});
        profile->mixed_gauge = &metrics_.upstream_certificate_mixed_allowed.Add({{"profile", config.name}});
        profile->mixed_gauge->Set(config.allow_mixed_ra ? 1 : 0);
        for (const UpstreamTarget& target : profiles[i].upstreams) {
            auto upstream = std::make_unique<Upstream>(*this, *profile, target, profile->upstreams.size());
            for (const Known& known : carried)
                if (known.profile == config.name && known.url == target.config->url)
                    adopt_certificates(*upstream, known.certificates, false);
            profile->upstreams.push_back(std::move(upstream));
        }
        profiles_.push_back(std::move(profile));
    }
}

UpstreamCertificateWatcher::~UpstreamCertificateWatcher() {
    event_free(requests_event_);
    for (auto& profile : profiles_) {
        event_free(profile->refresh_event);
        for (auto& upstream : profile->upstreams)
            for (prometheus::Gauge* gauge : upstream->expiry)
                if (gauge) metrics_.upstream_certificate_expiry.Remove(gauge);
        metrics_.upstream_certificate_groups.Remove(profile->groups_gauge);
        metrics_.upstream_certificate_mixed_allowed.Remove(profile->mixed_gauge);
    }
    profiles_.clear();  // abandons fetches in flight: their connections go to the reaper
    reaper_.clear();
}

void UpstreamCertificateWatcher::start() {
    const timeval second{1, 0};
    event_add(requests_event_, &second);
    for (auto& profile : profiles_) {
        const bool carried = std::any_of(profile->upstreams.begin(), profile->upstreams.end(),
                                         [](const auto& upstream) { return upstream->certificates.has_value(); });
        if (carried) publish(*profile);
        const timeval interval = to_timeval(profile->targets->profile->ca_refresh_interval);
        event_add(profile->refresh_event, &interval);
        refresh(*profile);
    }
}

std::vector<UpstreamCertificateWatcher::Known> UpstreamCertificateWatcher::known() const {
    std::vector<Known> known;
    for (const auto& profile : profiles_)
        for (const auto& upstream : profile->upstreams)
            if (upstream->certificates)
                known.push_back(Known{profile->targets->profile->name, upstream->target.config->url,
                                      *upstream->certificates});
    return known;
}

void UpstreamCertificateWatcher::on_refresh(int, short, void* arg) {
    Profile& profile = *static_cast<Profile*>(arg);
    profile.watcher->refresh(profile);
}

void UpstreamCertificateWatcher::on_retry(int, short, void* arg) {
    Upstream& upstream = *static_cast<Upstream*>(arg);
    upstream.profile.watcher->fetch(upstream);
}

// Workers whose GetCACert answer differed from the last fetch's ask for a fetch of that upstream.
void UpstreamCertificateWatcher::on_requests(int, short, void* arg) {
    auto& watcher = *static_cast<UpstreamCertificateWatcher*>(arg);
    for (auto& profile : watcher.profiles_) {
        const uint32_t requested = profile->board->take_refresh_requests();
        for (auto& upstream : profile->upstreams)
            if (requested & (uint32_t{1} << upstream->index)) watcher.fetch(*upstream);
    }
}

void UpstreamCertificateWatcher::refresh(Profile& profile) {
    for (auto& upstream : profile.upstreams) fetch(*upstream);
}

void UpstreamCertificateWatcher::fetch(Upstream& upstream) {
    const conf::ProfileConfig& config = *upstream.profile.targets->profile;
    const size_t max_bytes = pkcs7::CaCertificatesLimits{}.max_bytes;
    Upstream* fetching = &upstream;
    event_del(upstream.retry_event);
    // An upstream still answering the last fetch is not asked twice (start refuses).
    upstream.fetch.start("GetCACert", config.timeout, max_bytes,
                         [this, fetching](UpstreamFetchResult& result) { fetched(*fetching, result); });
}

void UpstreamCertificateWatcher::fetched(Upstream& upstream, const UpstreamFetchResult& result) {
    const std::string& profile_name = upstream.profile.targets->profile->name;
    if (!result.answered() || result.status != 200) {
        upstream.fetch_failed->Increment();
        LogLine line(LogLevel::warn, "upstream_certificate_fetch_failed");
        line.field("profile", profile_name).field("upstream", upstream.target.label);
        if (result.answered())
            line.field("http_status", result.status);
        else
            line.field("failure", result.failure);
        line.field("kept", upstream.certificates ? "previous" : "none").emit();
        retry_if_unknown(upstream);
        return;
    }
    const auto parsed = pkcs7::parse_ca_certificates(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(result.body.data()), result.body.size()));
    if (!parsed.ok()) {
        upstream.fetch_unreadable->Increment();
        LogLine(LogLevel::warn, "upstream_certificates_unreadable")
            .field("profile", profile_name)
            .field("upstream", upstream.target.label)
            .field("error", pkcs7::to_string(parsed.error))
            .field("kept", upstream.certificates ? "previous" : "none")
            .emit();
        retry_if_unknown(upstream);
        return;
    }
    upstream.fetched_ok->Increment();
    upstream.profile.board->record_fetched_answer(upstream.index, ProfileCertificates::answer_hash(result.body));
    adopt_certificates(upstream, *parsed.value, true);
    publish(upstream.profile);
}

void UpstreamCertificateWatcher::retry_if_unknown(Upstream& upstream) {
    if (upstream.certificates) return;  // the last good ones serve until the next refresh
    const timeval retry = to_timeval(std::min(kUnknownRetry, upstream.profile.targets->profile->ca_refresh_interval));
    event_add(upstream.retry_event, &retry);
}

// fetched_now: from a fetch (logged, checked for expiry), not carried over from a reload.
void UpstreamCertificateWatcher::adopt_certificates(Upstream& upstream, pkcs7::CaCertificates certificates,
                                                    bool fetched_now) {
    const std::string& profile_name = upstream.profile.targets->profile->name;
    const std::string now_list = fingerprint_list(certificates);
    if (upstream.certificates) {
        const std::string before = fingerprint_list(*upstream.certificates);
        if (before != now_list) {
            upstream.changes->Increment();
            LogLine(LogLevel::warn, "upstream_certificates_changed")
                .field("profile", profile_name)
                .field("upstream", upstream.target.label)
                .field("old", before)
                .field("new", now_list)
                .emit();
        }
    } else if (fetched_now) {
        LogLine(LogLevel::info, "upstream_certificates")
            .field("profile", profile_name)
            .field("upstream", upstream.target.label)
            .field("certificates", static_cast<unsigned long>(certificates.certificates.size()))
            .field("fingerprints", now_list)
            .emit();
    }
    upstream.certificates = std::move(certificates);
    set_expiry_gauges(upstream);
    if (!fetched_now) return;
    const int64_t now = unix_now();
    for (const pkcs7::CertificateSummary& certificate : upstream.certificates->certificates) {
        if (certificate.not_after <= 0 || certificate.not_after - now > kExpiryWarningSeconds) continue;
        LogLine(LogLevel::warn, "upstream_certificate_expiring")
            .field("profile", profile_name)
            .field("upstream", upstream.target.label)
            .field("role", pkcs7::to_string(certificate.role))
            .field("subject", certificate.subject)
            .field("not_after", format_rfc3339(certificate.not_after))
            .field("days_left", static_cast<long long>((certificate.not_after - now) / 86400))
            .field("fingerprint", certificate.sha256_fingerprint)
            .emit();
    }
}

// Per role the earliest notAfter: the certificate that needs renewing first. A role the answer
// no longer has leaves the scrape (an alert on it must not fire on a stale value).
void UpstreamCertificateWatcher::set_expiry_gauges(Upstream& upstream) {
    for (size_t r = 0; r < kRoles.size(); ++r) {
        int64_t earliest = 0;
        for (const pkcs7::CertificateSummary& certificate : upstream.certificates->certificates)
            if (certificate.role == kRoles[r] && certificate.not_after > 0 &&
                (earliest == 0 || certificate.not_after < earliest))
                earliest = certificate.not_after;
        prometheus::Gauge*& gauge = upstream.expiry[r];
        if (earliest == 0) {
            if (gauge) metrics_.upstream_certificate_expiry.Remove(gauge);
            gauge = nullptr;
            continue;
        }
        if (!gauge)
            gauge = &metrics_.upstream_certificate_expiry.Add({{"profile", upstream.profile.targets->profile->name},
                                                               {"upstream", upstream.target.label},
                                                               {"role", pkcs7::to_string(kRoles[r])}});
        gauge->Set(static_cast<double>(earliest));
    }
}

void UpstreamCertificateWatcher::publish(Profile& profile) {
    std::vector<std::optional<pkcs7::CaCertificates>> per_upstream;
    for (const auto& upstream : profile.upstreams) per_upstream.push_back(upstream->certificates);
    auto groups = std::make_shared<const UpstreamCertificateGroups>(UpstreamCertificateGroups::build(per_upstream));
    const size_t count = groups->group_count();
    profile.groups_gauge->Set(static_cast<double>(count));
    if (count != profile.published_groups && count > 1) {
        // Which upstream holds which certificates: "a=1 b=1 c=2" (group numbers, in upstream order).
        std::string members;
        for (size_t i = 0; i < profile.upstreams.size(); ++i) {
            if (!members.empty()) members += ' ';
            const auto group = groups->group_of_upstream(i);
            members += profile.upstreams[i]->target.label + "=" + (group ? std::to_string(*group + 1) : "unknown");
        }
        const bool allowed = profile.targets->profile->allow_mixed_ra;
        LogLine(allowed ? LogLevel::info : LogLevel::warn, "upstream_certificate_groups_differ")
            .field("profile", profile.targets->profile->name)
            .field("groups", static_cast<unsigned long>(count))
            .field("upstreams", members)
            .field("allow_mixed_ra", allowed ? "true" : "false")
            .emit();
    }
    if (count != profile.published_groups && groups->names_ambiguous())
        LogLine(LogLevel::warn, "upstream_certificate_names_ambiguous")
            .field("profile", profile.targets->profile->name)
            .field("detail",
                   "upstream groups hold different certificates with the same issuer and serial (e.g. CAs made by "
                   "`scepserver ca -init` with the same names): a device's requests go to the group whose GetCACert "
                   "answer its token was shown")
            .emit();
    profile.published_groups = count;
    profile.board->publish(std::move(groups));
}

}  // namespace scepproxy::proxy
