// Worker: one thread, one libevent event_base, its own listening socket, store session and upstream pools.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.h"
#include "proxy/scep/ca_answer_cache.h"
#include "proxy/scep/ca_fetch_coalescer.h"
#include "proxy/limits/client_connection_counter.h"
#include "proxy/limits/connection_budget.h"
#include "proxy/net/connection_host.h"
#include "proxy/net/connection_set.h"
#include "proxy/server/listener.h"
#include "proxy/net/loop_task_queue.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/limits/rate_limiter.h"
#include "proxy/upstream/upstream_host.h"
#include "proxy/server/serving_config.h"
#include "proxy/upstream/upstream_target.h"
#include "token/enrollment_store.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

class UpstreamConnection;
class UpstreamPool;
class Worker;

// What the server shares with every worker for its whole life (thread-safe).
struct WorkerShared {
    token::EnrollmentStore* store = nullptr;
    ProxyMetrics* metrics = nullptr;
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

// What one ServingConfig becomes in this worker: upstream pools and CA answer caches. A request
// holds it (shared_ptr) from its start to its answer; a reload retires it (its pools keep no
// idle connections any more) and it is freed with the last request that started on it.
struct WorkerGeneration {
    WorkerGeneration(Worker& worker, std::shared_ptr<const ServingConfig> serving);
    ~WorkerGeneration();
    WorkerGeneration(const WorkerGeneration&) = delete;
    WorkerGeneration& operator=(const WorkerGeneration&) = delete;

    WorkerProfile* find_profile(std::string_view name);
    void retire();

    const std::shared_ptr<const ServingConfig> serving;
    std::vector<WorkerProfile> profiles;
};

class Worker final : public ConnectionHost, public UpstreamHost {
public:
    static constexpr const char* kListenerName = "scep";

    Worker(unsigned index, const WorkerShared& shared, std::shared_ptr<const ServingConfig> serving, int listen_fd);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    bool init(std::string* error);   // on the main thread, before start()
    void start();                    // runs the loop on a new thread
    void request_stop();             // thread-safe: stop accepting, drain, exit
    void join();

    // ConnectionHost, for this worker's connections (on its thread only).
    event_base* base() const override { return base_; }
    const conf::LimitsConfig& limits() const override { return config().limits; }
    bool access_log_enabled() const override { return config().log.access_log; }
    bool draining() const override { return draining_; }
    void connection_closed(HttpConnection* connection) override;
    void request_done(const RequestOutcome& outcome) override { metrics_.count_request(outcome); }
    void deadline_expired(std::string_view reason) override { metrics_.count_timeout(reason); }

    // The configuration new requests start with; a request keeps the one it started with.
    const conf::Config& config() const { return *generation_->serving->config; }
    const std::shared_ptr<WorkerGeneration>& generation() const { return generation_; }
    // On this worker's thread (post it): new connections and requests use `serving` from now on.
    void adopt(std::shared_ptr<const ServingConfig> serving);
    token::EnrollmentSession& store_session() { return *store_session_; }
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
    std::shared_ptr<WorkerGeneration> generation_;
    std::thread thread_;
};

}  // namespace scepproxy::proxy
