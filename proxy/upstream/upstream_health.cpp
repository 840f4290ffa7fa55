// UpstreamHealth: the in-service flag, its transitions logged once and mirrored in scepproxy_upstream_up.
#include "proxy/upstream/upstream_health.h"

#include <prometheus/gauge.h>

#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {

std::optional<bool> CheckStreak::count(bool check_ok, bool up) {
    if (check_ok) {
        failures_ = 0;
        passes_ = up ? 0 : passes_ + 1;
        if (up || passes_ < rise_) return std::nullopt;
        passes_ = 0;
        return true;
    }
    passes_ = 0;
    failures_ = up ? failures_ + 1 : 0;
    if (!up || failures_ < fall_) return std::nullopt;
    failures_ = 0;
    return false;
}

void UpstreamHealth::set_gauge(prometheus::Gauge* gauge) {
    gauge_ = gauge;
    if (gauge_) gauge_->Set(up() ? 1 : 0);
}

void UpstreamHealth::mark(bool up, std::string_view reason) {
    // A read first: the common case (no change) then writes no shared cache line.
    if (up_.load(std::memory_order_relaxed) == up || up_.exchange(up, std::memory_order_relaxed) == up) return;
    if (gauge_) gauge_->Set(up ? 1 : 0);
    if (!checked_) return;
    LogLine line = up ? LogLine(LogLevel::info, "upstream_up") : LogLine(LogLevel::warn, "upstream_down");
    line.field("profile", profile_).field("upstream", upstream_).field("reason", reason).emit();
}

}  // namespace scepproxy::proxy
