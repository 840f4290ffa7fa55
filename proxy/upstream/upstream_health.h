// UpstreamHealth: whether one upstream is in service, shared by every worker through one atomic (no lock on the request path).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace prometheus {
class Gauge;
}

namespace scepproxy::proxy {

// The health checker's count of one upstream's checks in a row. Returns the state the upstream
// should change to after this check, or nullopt when it stays as it is.
class CheckStreak {
public:
    CheckStreak(uint32_t fall, uint32_t rise) : fall_(fall), rise_(rise) {}
    // up: the upstream's state now (a worker may have taken it out since the last check).
    std::optional<bool> count(bool check_ok, bool up);

private:
    const uint32_t fall_;
    const uint32_t rise_;
    uint32_t passes_ = 0;    // good checks in a row while out of service
    uint32_t failures_ = 0;  // failed checks in a row while in service
};

// Written by the health checker (control loop) and by a worker whose connect was refused;
// read by every worker when it picks an upstream. Relaxed ordering: the flag guards no other data.
class UpstreamHealth {
public:
    // checked: the profile has health checks. Without them the flag follows every exchange
    // (for the gauge), and logging each flip would repeat the upstream_failed lines.
    UpstreamHealth(std::string profile, std::string upstream, bool checked)
        : profile_(std::move(profile)), upstream_(std::move(upstream)), checked_(checked) {}

    bool up() const { return up_.load(std::memory_order_relaxed); }
    // Sets the state; a change is shown by the gauge and, with health checks, logged
    // (upstream_up / upstream_down with `reason`).
    void mark(bool up, std::string_view reason);
    void set_gauge(prometheus::Gauge* gauge);  // at start-up, before workers run

private:
    const std::string profile_;
    const std::string upstream_;
    const bool checked_;
    std::atomic<bool> up_{true};
    prometheus::Gauge* gauge_ = nullptr;
};

}  // namespace scepproxy::proxy
