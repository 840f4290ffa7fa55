// Upstream probe: every upstream's GetCACaps and GetCACert as UpstreamFetches on one event loop, then certificate groups and the report.
#include "proxy/server/upstream_probe.h"

#include <event2/event.h>
#include <signal.h>

#include <algorithm>
#include <memory>
#include <span>
#include <string_view>

#include "base/clock.h"
#include "proxy/net/connection_set.h"
#include "proxy/scep/upstream_certificate_groups.h"
#include "proxy/upstream/upstream_host.h"
#include "proxy/upstream/upstream_target.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kMaxCapsBytes = 4096;  // a capability list, as the health checks take it
// The loop stops this long after the longest profile `timeout` even if a fetch never reported.
constexpr conf::Duration kDeadlineMargin = std::chrono::seconds(1);
constexpr const char* kNotFinished = "probe_deadline";

timeval to_timeval(conf::Duration d) {
    return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

// The fetches in flight, the host of their connections, and the overall deadline: one run of one loop.
class ProbeRun final : public UpstreamHost {
public:
    explicit ProbeRun(event_base* base)
        : base_(base), reaper_(base, [] {}), deadline_event_(event_new(base, -1, 0, &ProbeRun::on_deadline, this)) {}
    ~ProbeRun() {
        fetches_.clear();  // abandons fetches in flight: their connections go to the reaper
        reaper_.clear();
        event_free(deadline_event_);
    }
    ProbeRun(const ProbeRun&) = delete;
    ProbeRun& operator=(const ProbeRun&) = delete;

    // Starts GET ?operation=`operation`; its result lands in *into (which outlives the run).
    void fetch(const conf::ProfileConfig& profile, const UpstreamTarget& target, std::string_view operation,
               size_t max_body_bytes, UpstreamFetchResult* into) {
        *into = UpstreamFetchResult{};
        into->failure = kNotFinished;  // until it reports
        fetches_.push_back(std::make_unique<UpstreamFetch>(*this, profile, target));
        ++pending_;
        // May report before start returns (no connection could be started).
        fetches_.back()->start(operation, profile.timeout, max_body_bytes, [this, into](UpstreamFetchResult& result) {
            *into = result;
            if (--pending_ == 0) event_base_loopbreak(base_);
        });
    }

    // Returns when every fetch reported, or `deadline` passed (those still out keep kNotFinished).
    void run(conf::Duration deadline) {
        if (pending_ == 0) return;
        const timeval tv = to_timeval(deadline);
        event_add(deadline_event_, &tv);
        event_base_dispatch(base_);
    }

    event_base* base() const override { return base_; }
    bool draining() const override { return false; }  // its fetches keep nothing idle anyway
    void upstream_closed(UpstreamConnection* connection) override { reaper_.delete_later(connection); }

private:
    static void on_deadline(int, short, void* arg) { event_base_loopbreak(static_cast<ProbeRun*>(arg)->base_); }

    event_base* base_;
    ConnectionSet reaper_;  // frees closed fetch connections after the loop iteration
    event* deadline_event_ = nullptr;
    std::vector<std::unique_ptr<UpstreamFetch>> fetches_;
    size_t pending_ = 0;
};

// resolve_profile_targets names the profile in its errors; the report already does.
std::string without_profile_prefix(const std::string& error, const std::string& profile) {
    const std::string prefix = "profile '" + profile + "': ";
    return error.rfind(prefix, 0) == 0 ? error.substr(prefix.size()) : error;
}

// Reads the GetCACert answer of each upstream and groups the profile's upstreams by it.
void read_certificates(ProfileProbeResult& result) {
    std::vector<std::optional<pkcs7::CaCertificates>> per_upstream;
    for (UpstreamProbeResult& upstream : result.upstreams) {
        const UpstreamFetchResult& answer = upstream.ca_certificates;
        if (answer.answered() && answer.status == 200) {
            auto parsed = pkcs7::parse_ca_certificates(
                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(answer.body.data()), answer.body.size()));
            if (parsed.ok())
                upstream.certificates = std::move(*parsed.value);
            else
                upstream.certificates_error = pkcs7::to_string(parsed.error);
        }
        per_upstream.push_back(upstream.certificates);
    }
    const UpstreamCertificateGroups groups = UpstreamCertificateGroups::build(per_upstream);
    result.group_count = groups.group_count();
    for (size_t i = 0; i < result.upstreams.size(); ++i) result.upstreams[i].group = groups.group_of_upstream(i);
}

// What an upstream sent, fit for a terminal: bytes outside printable ASCII become '?'.
std::string printable(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    return out;
}

// A GetCACaps body's lines (CRLF or LF, blanks dropped) joined with ','.
std::string capability_list(std::string_view body) {
    std::string list;
    while (!body.empty()) {
        const size_t end = std::min(body.find('\n'), body.size());
        std::string_view line = body.substr(0, end);
        body.remove_prefix(std::min(end + 1, body.size()));
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.remove_suffix(1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        if (line.empty()) continue;
        if (!list.empty()) list += ',';
        list += printable(line);
    }
    return list.empty() ? "(no capabilities)" : list;
}

// "HTTP 503 (expected 200)" or "no answer: upstream_connect_failed"; empty for a 200.
std::string failed_answer(const UpstreamFetchResult& answer) {
    if (!answer.answered()) return "no answer: " + answer.failure;
    if (answer.status != 200) return "HTTP " + std::to_string(answer.status) + " (expected 200)";
    return {};
}

std::string group_name(const std::optional<size_t>& group) {
    return group ? std::to_string(*group + 1) : std::string("unknown");
}

void print_upstream(std::FILE* out, const char* profile, const UpstreamProbeResult& upstream) {
    const char* label = upstream.label.c_str();
    if (upstream.ok())
        std::fprintf(out, "profile %s: upstream %s: %s: ok, group %s\n", profile, label, upstream.url.c_str(),
                     group_name(upstream.group).c_str());
    else
        std::fprintf(out, "profile %s: upstream %s: %s: failed\n", profile, label, upstream.url.c_str());

    const std::string caps_failure = failed_answer(upstream.caps);
    if (caps_failure.empty())
        std::fprintf(out, "profile %s: upstream %s: GetCACaps: HTTP 200: %s\n", profile, label,
                     capability_list(upstream.caps.body).c_str());
    else
        std::fprintf(out, "profile %s: upstream %s: GetCACaps: %s\n", profile, label, caps_failure.c_str());

    const UpstreamFetchResult& answer = upstream.ca_certificates;
    const std::string content_type = printable(answer.content_type.empty() ? "none" : answer.content_type);
    if (const std::string failure = failed_answer(answer); !failure.empty()) {
        std::fprintf(out, "profile %s: upstream %s: GetCACert: %s\n", profile, label, failure.c_str());
        return;
    }
    if (!upstream.certificates) {
        std::fprintf(out, "profile %s: upstream %s: GetCACert: HTTP 200: unreadable: %s (%zu bytes, Content-Type %s)\n",
                     profile, label, upstream.certificates_error.c_str(), answer.body.size(), content_type.c_str());
        return;
    }
    const auto& certificates = upstream.certificates->certificates;
    std::fprintf(out, "profile %s: upstream %s: GetCACert: HTTP 200: %zu certificate%s (%s, Content-Type %s)\n",
                 profile, label, certificates.size(), certificates.size() == 1 ? "" : "s",
                 pkcs7::to_string(upstream.certificates->format), content_type.c_str());
    for (const pkcs7::CertificateSummary& certificate : certificates) {
        const std::string not_after = certificate.not_after > 0 ? format_rfc3339(certificate.not_after) : "unknown";
        std::fprintf(out, "profile %s: upstream %s: certificate %s: subject %s; notAfter %s; SHA-256 %s\n", profile,
                     label, pkcs7::to_string(certificate.role), printable(certificate.subject).c_str(),
                     not_after.c_str(), certificate.sha256_fingerprint.c_str());
    }
}

}  // namespace

bool ProfileProbeResult::ok() const {
    if (!error.empty()) return false;
    if (!std::all_of(upstreams.begin(), upstreams.end(), [](const UpstreamProbeResult& u) { return u.ok(); }))
        return false;
    return !mixed() || profile->allow_mixed_ra;
}

std::vector<ProfileProbeResult> probe_upstreams(const conf::Config& config) {
    signal(SIGPIPE, SIG_IGN);  // a peer that went away mid-write is a failed fetch, not the end of the process
    const size_t count = config.profiles.size();
    std::vector<ProfileProbeResult> results(count);
    // Each profile resolved on its own: an unresolvable host leaves the other profiles probed.
    // The targets point into these one-profile configurations, which outlive the run.
    std::vector<conf::Config> singles(count);
    std::vector<std::vector<ProfileTargets>> targets(count);
    conf::Duration longest{0};
    for (size_t i = 0; i < count; ++i) {
        const conf::ProfileConfig& profile = config.profiles[i];
        results[i].profile = &profile;
        singles[i].profiles = {profile};
        std::string error;
        if (!resolve_profile_targets(singles[i], &targets[i], &error)) {
            results[i].error = without_profile_prefix(error, profile.name);
            continue;
        }
        for (const UpstreamTarget& target : targets[i].front().upstreams) {
            UpstreamProbeResult upstream;
            upstream.label = target.label;
            upstream.url = target.config->url;
            results[i].upstreams.push_back(std::move(upstream));
        }
        longest = std::max(longest, profile.timeout);
    }

    event_base* base = event_base_new();
    if (!base) {
        for (ProfileProbeResult& result : results)
            if (result.error.empty()) result.error = "cannot create an event loop";
        return results;
    }
    {
        ProbeRun run(base);
        for (size_t i = 0; i < count; ++i) {
            if (!results[i].error.empty()) continue;
            const ProfileTargets& profile_targets = targets[i].front();
            const conf::ProfileConfig& profile = *profile_targets.profile;
            for (size_t u = 0; u < profile_targets.upstreams.size(); ++u) {
                UpstreamProbeResult& upstream = results[i].upstreams[u];
                run.fetch(profile, profile_targets.upstreams[u], "GetCACaps", kMaxCapsBytes, &upstream.caps);
                run.fetch(profile, profile_targets.upstreams[u], "GetCACert", pkcs7::CaCertificatesLimits{}.max_bytes,
                          &upstream.ca_certificates);
            }
        }
        run.run(longest + kDeadlineMargin);
    }
    event_base_free(base);

    for (ProfileProbeResult& result : results)
        if (result.error.empty()) read_certificates(result);
    return results;
}

bool print_upstream_probe(std::FILE* out, const ProfileProbeResult& result) {
    const char* name = result.profile->name.c_str();
    if (!result.error.empty()) {
        std::fprintf(out, "profile %s: upstreams: not probed: %s\n", name, result.error.c_str());
        return false;
    }
    std::string members;  // "a=1 b=1 c=2": each upstream's group number, in upstream order
    size_t failed = 0;
    for (const UpstreamProbeResult& upstream : result.upstreams) {
        print_upstream(out, name, upstream);
        if (!upstream.ok()) ++failed;
        if (!members.empty()) members += ' ';
        members += upstream.label + "=" + group_name(upstream.group);
    }
    if (failed > 0)
        std::fprintf(out, "profile %s: upstreams: %zu of %zu failed\n", name, failed, result.upstreams.size());
    if (result.mixed() && !result.profile->allow_mixed_ra)
        std::fprintf(out,
                     "profile %s: upstreams disagree: %zu certificate groups (%s); set allow_mixed_ra: true if "
                     "intended\n",
                     name, result.group_count, members.c_str());
    else if (result.mixed())
        std::fprintf(out, "profile %s: upstreams: %zu certificate groups (%s), allowed by allow_mixed_ra: true\n", name,
                     result.group_count, members.c_str());
    else
        std::fprintf(out, "profile %s: upstreams: %zu certificate group%s (%s)\n", name, result.group_count,
                     result.group_count == 1 ? "" : "s", members.c_str());
    return result.ok();
}

}  // namespace scepproxy::proxy
