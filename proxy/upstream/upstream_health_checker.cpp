// UpstreamHealthChecker: GetCACaps on a fresh connection per check; `fall` failures take an upstream out, `rise` passes bring it back.
#include "proxy/upstream/upstream_health_checker.h"

#include <event2/event.h>

namespace scepproxy::proxy {
namespace {

timeval to_timeval(conf::Duration d) {
    return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

}  // namespace

UpstreamHealthChecker::UpstreamHealthChecker(event_base* base, const std::vector<ProfileTargets>& profiles)
    : base_(base), reaper_(base, [] {}) {
    for (const auto& targets : profiles) {
        if (!targets.profile->health_check) continue;
        for (const auto& target : targets.upstreams)
            probes_.push_back(std::make_unique<Probe>(*this, *targets.profile, target));
    }
}

UpstreamHealthChecker::~UpstreamHealthChecker() {
    probes_.clear();  // abandons checks in flight: their connections go to the reaper
    reaper_.clear();
}

void UpstreamHealthChecker::start() {
    for (auto& probe : probes_) probe->start();
}

UpstreamHealthChecker::Probe::Probe(UpstreamHealthChecker& checker, const conf::ProfileConfig& profile,
                                    const UpstreamTarget& target)
    : config_(*profile.health_check),
      target_(target),
      streak_(config_.fall, config_.rise),
      fetch_(checker, profile, target),
      interval_event_(event_new(checker.base(), -1, EV_PERSIST, &Probe::on_interval, this)) {}

UpstreamHealthChecker::Probe::~Probe() { event_free(interval_event_); }

void UpstreamHealthChecker::Probe::start() {
    const timeval interval = to_timeval(config_.interval);
    event_add(interval_event_, &interval);
    check();
}

void UpstreamHealthChecker::Probe::on_interval(int, short, void* arg) { static_cast<Probe*>(arg)->check(); }

void UpstreamHealthChecker::Probe::check() {
    // A check still within its deadline is not doubled (start refuses it).
    constexpr size_t kMaxCapsBytes = 4096;  // a capability list; more is not a SCEP server's answer
    fetch_.start("GetCACaps", config_.timeout, kMaxCapsBytes, [this](UpstreamFetchResult& result) { finish(result); });
}

// Counts one check's result; its reason becomes the transition's logged reason.
void UpstreamHealthChecker::Probe::finish(const UpstreamFetchResult& result) {
    const bool ok = result.answered() && result.status == 200;
    const std::string why = ok                                   ? "check_ok"
                            : result.answered()                  ? "check_http_status"
                            : result.failure == "timeout"        ? "check_timeout"
                            : result.failure == "connect_failed" ? "upstream_connect_failed"
                                                                 : result.failure;
    UpstreamHealth& health = *target_.health;
    if (const std::optional<bool> change = streak_.count(ok, health.up())) health.mark(*change, why);
}

}  // namespace scepproxy::proxy
