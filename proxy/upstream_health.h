// UpstreamHealth: whether one upstream is in service, shared by every worker through one atomic (no lock on the request path).
#pragma once

#include <atomic>
#include <string>
#include <string_view>

namespace prometheus {
class Gauge;
}

namespace scepproxy::proxy {

// Written by the health checker (control loop) and by a worker whose connect was refused;
// read by every worker when it picks an upstream. Relaxed ordering: the flag guards no other data.
class UpstreamHealth {
public:
    UpstreamHealth(std::string profile, std::string upstream) : profile_(std::move(profile)), upstream_(std::move(upstream)) {}

    bool up() const { return up_.load(std::memory_order_relaxed); }
    // Sets the state; a change is logged (upstream_up / upstream_down with `reason`) and shown by the gauge.
    void mark(bool up, std::string_view reason);
    void set_gauge(prometheus::Gauge* gauge);  // at start-up, before workers run

private:
    const std::string profile_;
    const std::string upstream_;
    std::atomic<bool> up_{true};
    prometheus::Gauge* gauge_ = nullptr;
};

}  // namespace scepproxy::proxy
