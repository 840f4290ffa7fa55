// UpstreamHealthChecker: GetCACaps on a fresh connection per check; `fall` failures take an upstream out, `rise` passes bring it back.
#include "proxy/upstream/upstream_health_checker.h"

#include <event2/event.h>

#include "proxy/upstream/upstream_request.h"

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
      pool_(checker, profile, target, 0),  // a fresh connection per check: the connect is part of the check
      interval_event_(event_new(checker.base(), -1, EV_PERSIST, &Probe::on_interval, this)),
      deadline_event_(event_new(checker.base(), -1, 0, &Probe::on_deadline, this)) {}

UpstreamHealthChecker::Probe::~Probe() {
    if (in_flight_) in_flight_->abandon();
    event_free(interval_event_);
    event_free(deadline_event_);
}

void UpstreamHealthChecker::Probe::start() {
    const timeval interval = to_timeval(config_.interval);
    event_add(interval_event_, &interval);
    check();
}

void UpstreamHealthChecker::Probe::on_interval(int, short, void* arg) { static_cast<Probe*>(arg)->check(); }

void UpstreamHealthChecker::Probe::on_deadline(int, short, void* arg) {
    static_cast<Probe*>(arg)->finish(false, "check_timeout");
}

void UpstreamHealthChecker::Probe::check() {
    if (in_flight_) return;  // the last check is still within its deadline
    status_ = 0;
    in_flight_ = pool_.acquire();
    if (!in_flight_) {
        finish(false, "upstream_connect_failed");
        return;
    }
    const timeval deadline = to_timeval(config_.timeout);
    event_add(deadline_event_, &deadline);
    ByteBuffer request;
    build_upstream_request(request, *target_.config, "GetCACaps", "", nullptr);
    in_flight_->send(std::move(request), false, this);
}

void UpstreamHealthChecker::Probe::on_upstream_complete() {
    UpstreamConnection* connection = in_flight_;
    in_flight_ = nullptr;
    pool_.release(connection);  // closed: the pool keeps nothing idle
    finish(status_ == 200, status_ == 200 ? "check_ok" : "check_http_status");
}

void UpstreamHealthChecker::Probe::on_upstream_failed(UpstreamFailure failure, bool, bool) {
    in_flight_ = nullptr;  // it closed itself
    finish(false, to_string(failure));
}

// Counts one check's result; `why` becomes the transition's logged reason.
void UpstreamHealthChecker::Probe::finish(bool ok, const char* why) {
    event_del(deadline_event_);
    if (in_flight_) {  // the deadline passed first
        in_flight_->abandon();
        in_flight_ = nullptr;
    }
    UpstreamHealth& health = *target_.health;
    if (const std::optional<bool> change = streak_.count(ok, health.up())) health.mark(*change, why);
}

}  // namespace scepproxy::proxy
