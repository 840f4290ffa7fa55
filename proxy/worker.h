// Worker: one thread, one libevent event_base, its own listening socket, store session and upstream pools.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.h"
#include "proxy/ca_answer_cache.h"
#include "proxy/ca_fetch_coalescer.h"
#include "proxy/client_connection_counter.h"
#include "proxy/connection_budget.h"
#include "proxy/connection_host.h"
#include "proxy/connection_set.h"
#include "proxy/listener.h"
#include "proxy/loop_task_queue.h"
#include "proxy/metrics.h"
#include "proxy/rate_limiter.h"
#include "proxy/tls_context.h"
#include "proxy/upstream_host.h"
#include "proxy/upstream_target.h"
#include "token/enrollment_store.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

class UpstreamConnection;
class UpstreamPool;

// What the server shares with every worker (read-only while workers run).
struct WorkerShared {
    std::shared_ptr<const conf::Config> config;
    std::vector<ProfileTargets> profiles;
    token::EnrollmentStore* store = nullptr;
    ProxyMetrics* metrics = nullptr;
    SSL_CTX* scep_tls = nullptr;  // the SCEP listener's TLS context; null: plain HTTP
    ConnectionBudget* connection_budget = nullptr;  // limits.max_connections, one waiter per worker
    ClientConnectionCounter* client_connections = nullptr;  // limits.per_client.max_connections
    RateLimiter* client_requests = nullptr;                 // limits.per_client.requests_per_minute
    RateLimiter* token_requests = nullptr;                  // limits.per_token.requests_per_minute
};

// A profile's upstreams as this worker sees them: one pool per upstream, round-robin start.
struct WorkerProfile {
    const ProfileTargets* targets = nullptr;
    std::vector<std::unique_ptr<UpstreamPool>> pools;
    size_t next_upstream = 0;
    CaAnswerCache ca_cache;
    CaFetchCoalescer ca_fetches;  // single-flight for ca_cache misses
    const ProfileMetrics* metrics = nullptr;

    // The next upstream round-robin among those in service and not in `tried` (bit i: pools[i]).
    // Without health checks every upstream counts as in service. With them and none in service,
    // a first attempt (`tried` empty) takes the next one anyway: a stale state never locks a
    // profile out. nullopt when there is none to try.
    std::optional<size_t> pick_upstream(uint32_t tried);
    // Whether pick_upstream(tried) would find one, without moving the round-robin on.
    bool can_pick_upstream(uint32_t tried) const { return find_upstream(next_upstream, tried).has_value(); }

private:
    std::optional<size_t> find_upstream(size_t start, uint32_t tried) const;
};

class Worker final : public ConnectionHost, public UpstreamHost {
public:
    static constexpr const char* kListenerName = "scep";

    Worker(unsigned index, const WorkerShared& shared, int listen_fd);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    bool init(std::string* error);   // on the main thread, before start()
    void start();                    // runs the loop on a new thread
    void request_stop();             // thread-safe: stop accepting, drain, exit
    void join();

    // ConnectionHost, for this worker's connections (on its thread only).
    event_base* base() const override { return base_; }
    const conf::LimitsConfig& limits() const override { return shared_.config->limits; }
    bool access_log_enabled() const override { return shared_.config->log.access_log; }
    bool draining() const override { return draining_; }
    void connection_closed(HttpConnection* connection) override;
    void request_done(const RequestOutcome& outcome) override { metrics_.count_request(outcome); }
    void deadline_expired(std::string_view reason) override { metrics_.count_timeout(reason); }

    const conf::Config& config() const { return *shared_.config; }
    token::EnrollmentSession& store_session() { return *store_session_; }
    WorkerProfile* find_profile(std::string_view name);
    WorkerMetrics& metrics() { return metrics_; }
    RateLimiter& client_request_limiter() { return *shared_.client_requests; }
    RateLimiter& token_request_limiter() { return *shared_.token_requests; }
    // Thread-safe: runs `task` on this worker's thread (how asynchronous backends hand back answers).
    void post(std::function<void()> task) { tasks_->post(std::move(task)); }
    void upstream_closed(UpstreamConnection* connection) override;  // freed after this loop iteration

private:
    static void on_stop_signal(int fd, short what, void* arg);
    static void on_shutdown_deadline(int fd, short what, void* arg);
    bool accept_connection(int fd, const SocketAddress& peer);
    void resume_accepting();
    void begin_drain();
    void maybe_finish_drain();

    const unsigned index_;
    const WorkerShared& shared_;
    int listen_fd_;
    int stop_fd_ = -1;   // eventfd: the main thread's way to say "stop"
    event_base* base_ = nullptr;
    event* stop_event_ = nullptr;
    event* shutdown_deadline_event_ = nullptr;
    bool draining_ = false;

    WorkerMetrics metrics_;
    std::unique_ptr<token::EnrollmentSession> store_session_;
    std::unique_ptr<LoopTaskQueue> tasks_;
    std::optional<ConnectionSet> connections_;
    std::unique_ptr<Listener> listener_;
    std::vector<WorkerProfile> profiles_;
    std::thread thread_;
};

}  // namespace scepproxy::proxy
