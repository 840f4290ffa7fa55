// UpstreamHealthChecker: active health checks (GetCACaps every interval) of every checked profile's upstreams, on the control loop.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "proxy/net/connection_set.h"
#include "proxy/upstream/upstream_fetch.h"
#include "proxy/upstream/upstream_host.h"
#include "proxy/upstream/upstream_target.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

// One checker for the process, not one per worker: NDES sees one check per interval and
// upstream however many workers run, and every worker reads the same UpstreamHealth flag.
// Runs on one event loop (the control loop); start() before that loop runs, destroyed after it stopped.
class UpstreamHealthChecker final : public UpstreamHost {
public:
    UpstreamHealthChecker(event_base* base, const std::vector<ProfileTargets>& profiles);
    ~UpstreamHealthChecker();
    UpstreamHealthChecker(const UpstreamHealthChecker&) = delete;
    UpstreamHealthChecker& operator=(const UpstreamHealthChecker&) = delete;

    void start();  // the first checks run at once
    size_t size() const { return probes_.size(); }

    event_base* base() const override { return base_; }
    bool draining() const override { return false; }  // its pools keep nothing idle anyway
    void upstream_closed(UpstreamConnection* connection) override { reaper_.delete_later(connection); }

private:
    // One upstream's checks: a timer every interval, one check in flight at most.
    class Probe {
    public:
        Probe(UpstreamHealthChecker& checker, const conf::ProfileConfig& profile, const UpstreamTarget& target);
        ~Probe();
        Probe(const Probe&) = delete;
        Probe& operator=(const Probe&) = delete;
        void start();

    private:
        static void on_interval(int fd, short what, void* arg);
        void check();
        void finish(const UpstreamFetchResult& result);

        const conf::HealthCheckConfig& config_;
        const UpstreamTarget& target_;
        CheckStreak streak_;
        UpstreamFetch fetch_;
        event* interval_event_ = nullptr;
    };

    event_base* base_;
    ConnectionSet reaper_;  // frees closed check connections after the loop iteration
    std::vector<std::unique_ptr<Probe>> probes_;
};

}  // namespace scepproxy::proxy
