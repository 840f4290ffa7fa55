// ControlLoop: one thread serving the operator-facing listeners (metrics, admin API), off the data path.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/blocking_task_pool.h"
#include "conf/config.h"
#include "proxy/admin/admin_api_handler.h"
#include "proxy/challenge/challenge_source.h"
#include "proxy/net/connection_host.h"
#include "proxy/net/connection_set.h"
#include "proxy/server/listener.h"
#include "proxy/net/loop_task_queue.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/server/serving_config.h"
#include "proxy/scep/upstream_certificate_watcher.h"
#include "proxy/upstream/upstream_health_checker.h"
#include "token/enrollment_store.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

// The admin API's blocking work (challenge fetches, store calls) runs on a small thread pool;
// answers come back through a task queue, so connections are only ever touched by this loop.
class ControlLoop final : public ConnectionHost {
public:
    // `store` must outlive the loop; it is thread-safe.
    ControlLoop(std::shared_ptr<const ServingConfig> serving, ProxyMetrics& metrics, token::EnrollmentStore& store);
    ~ControlLoop();
    ControlLoop(const ControlLoop&) = delete;
    ControlLoop& operator=(const ControlLoop&) = delete;

    // Opens the configured listeners and logs where they listen. False with *error on failure.
    bool init(std::string* error);
    void start();
    void request_stop();  // thread-safe
    void join();
    // Thread-safe: new admin connections and requests use `serving` (its TLS certificate,
    // bearer token, profiles and challenge sources); requests under way finish on theirs.
    // `switched` runs on the loop's thread right after.
    void post_serving_config(std::shared_ptr<const ServingConfig> serving, std::function<void()> switched);

    event_base* base() const override { return base_; }
    const conf::LimitsConfig& limits() const override { return serving_->config->limits; }
    bool access_log_enabled() const override { return false; }  // scrapes every few seconds would drown the log
    bool draining() const override { return draining_; }
    void connection_closed(HttpConnection* connection) override;
    void request_done(const RequestOutcome&) override {}
    void deadline_expired(std::string_view) override {}  // scepproxy_timeouts_total counts the SCEP listener

private:
    static constexpr size_t kMaxConnections = 256;  // operators' tools, not devices
    static constexpr size_t kMaxQueuedAdminTasks = 256;

    static void on_stop_signal(int fd, short what, void* arg);
    bool init_admin(std::string* error);
    bool open_listener(const char* name, const conf::ListenAddress& address, std::string* error);
    bool accept_connection(const char* name, int fd, const SocketAddress& peer);
    void begin_drain();
    void adopt(std::shared_ptr<const ServingConfig> serving);
    void check_upstreams();

    std::shared_ptr<const ServingConfig> serving_;
    ProxyMetrics& metrics_;
    token::EnrollmentStore& store_;
    event_base* base_ = nullptr;
    int stop_fd_ = -1;
    event* stop_event_ = nullptr;
    bool draining_ = false;
    std::optional<ConnectionSet> connections_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    // Active health checks of serving_'s upstreams (off the data path, which only reads the
    // flags they publish); a reload starts a new checker for the new upstreams.
    std::unique_ptr<UpstreamHealthChecker> health_checker_;
    // Every upstream's CA/RA certificates, fetched every ca_refresh_interval and published to the
    // workers through serving_'s ProfileCertificates; a reload's new watcher starts with what it knew.
    std::unique_ptr<UpstreamCertificateWatcher> certificate_watcher_;
    // Other threads' work for this loop: reloads, the admin API's answers.
    std::unique_ptr<LoopTaskQueue> tasks_;
    // Admin API (when configured). Destroyed pool first: its threads post into the task queue.
    std::unique_ptr<AdminApiContext> admin_context_;
    std::unique_ptr<BlockingTaskPool> admin_pool_;
    std::thread thread_;
};

}  // namespace scepproxy::proxy
