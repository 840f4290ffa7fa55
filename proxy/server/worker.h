// Worker: one thread, one libevent event_base, its own listening socket, store session and upstream pools.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.h"
#include "proxy/scep/scep_host.h"
#include "proxy/scep/scep_profile.h"
#include "proxy/limits/buffer_wait_queue.h"
#include "proxy/limits/buffered_bytes_budget.h"
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
    ConnectionBudget* connection_budget = nullptr;          // limits.max_connections, one waiter per worker
    ClientConnectionCounter* client_connections = nullptr;  // limits.per_client.max_connections
    RateLimiter* client_requests = nullptr;                 // limits.per_client.requests_per_minute
    RateLimiter* token_requests = nullptr;                  // limits.per_token.requests_per_minute
    // limits.max_buffered_bytes: the request buffers of every worker's client connections together,
    // one waiter per worker. Made here with the rest of what workers share; its bound follows each
    // worker's configuration (set at init and on reload).
    const std::unique_ptr<BufferedBytesBudget> buffered_bytes = std::make_unique<BufferedBytesBudget>();
};

// What one ServingConfig becomes in this worker: upstream pools and CA answer caches. A request
// holds it (shared_ptr) from its start to its answer; a reload retires it (its pools keep no
// idle connections any more) and it is freed with the last request that started on it.
struct WorkerGeneration : ScepGeneration {
    WorkerGeneration(Worker& worker, std::shared_ptr<const ServingConfig> serving);
    ~WorkerGeneration();
    WorkerGeneration(const WorkerGeneration&) = delete;
    WorkerGeneration& operator=(const WorkerGeneration&) = delete;

    void retire();
    void close_idle();

    const std::shared_ptr<const ServingConfig> serving;
    std::vector<std::unique_ptr<UpstreamPool>> pools;  // every profile's, in order: the profiles' endpoints
};

// The answers of the transaction finishes this worker's requests start: logged when they failed.
class TransactionFinishLogger final : public token::SessionCallback {
public:
    void on_transaction_finished(const token::FinishResult& result) override;
};

class Worker final : public ConnectionHost, public UpstreamHost, public ScepHost {
public:
    static constexpr const char* kListenerName = "scep";

    Worker(unsigned index, const WorkerShared& shared, std::shared_ptr<const ServingConfig> serving, int listen_fd);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    bool init(std::string* error);  // on the main thread, before start()
    void start();                   // runs the loop on a new thread
    void request_stop();            // thread-safe: stop accepting, drain, exit
    void join();

    // ConnectionHost, for this worker's connections (on its thread only).
    event_base* base() const override { return base_; }
    const conf::LimitsConfig& limits() const override { return config().limits; }
    bool access_log_enabled() const override { return config().log.access_log; }
    bool draining() const override { return draining_; }
    void connection_closed(HttpConnection* connection) override;
    void request_done(const RequestOutcome& outcome) override { metrics_.count_request(outcome); }
    void deadline_expired(std::string_view reason) override { metrics_.count_timeout(reason); }
    bool charge_buffer(size_t bytes, bool request_start) override {
        return shared_.buffered_bytes->try_charge(bytes, request_start ? BufferUse::request_start : BufferUse::growth);
    }
    void credit_buffer(size_t bytes) override { shared_.buffered_bytes->credit(bytes); }
    void wait_for_buffer_budget(HttpConnection* connection, size_t wanted, bool request_start) override;

    // The configuration new requests start with; a request keeps the one it started with.
    const conf::Config& config() const { return *generation_->serving->config; }
    const std::shared_ptr<WorkerGeneration>& generation() const { return generation_; }
    std::shared_ptr<ScepGeneration> scep_generation() override { return generation_; }
    // On this worker's thread (post it): new connections and requests use `serving` from now on.
    void adopt(std::shared_ptr<const ServingConfig> serving);
    // ScepHost, for this worker's SCEP requests.
    token::EnrollmentSession& store_session() override { return *store_session_; }
    token::SessionCallback& transaction_finish_logger() override { return finish_logger_; }
    WorkerMetrics& metrics() override { return metrics_; }
    RateLimiter& client_request_limiter() override { return *shared_.client_requests; }
    RateLimiter& token_request_limiter() override { return *shared_.token_requests; }
    // Thread-safe: runs `task` on this worker's thread (how asynchronous backends hand back answers).
    void post(std::function<void()> task) { tasks_->post(std::move(task)); }
    void upstream_closed(UpstreamConnection* connection) override;  // freed after this loop iteration

private:
    static void on_stop_signal(int fd, short what, void* arg);
    static void on_shutdown_deadline(int fd, short what, void* arg);
    bool accept_connection(int fd, const SocketAddress& peer);
    void resume_accepting();
    void set_buffered_bytes_bound();
    void resume_buffer_waiters();
    void serve_buffer_waiters(BufferWaitQueue<HttpConnection>& waiters);
    void begin_drain();
    void maybe_finish_drain();

    const unsigned index_;
    const WorkerShared& shared_;
    int listen_fd_;
    int stop_fd_ = -1;  // eventfd: the main thread's way to say "stop"
    event_base* base_ = nullptr;
    event* stop_event_ = nullptr;
    event* shutdown_deadline_event_ = nullptr;
    bool draining_ = false;

    WorkerMetrics metrics_;
    TransactionFinishLogger finish_logger_;  // before the session: outlives every call made to it
    std::unique_ptr<token::EnrollmentSession> store_session_;
    std::unique_ptr<LoopTaskQueue> tasks_;
    std::optional<ConnectionSet> connections_;
    // Stopped reading for want of buffer budget: for their next request's first block, or to grow.
    BufferWaitQueue<HttpConnection> starting_waiters_;
    BufferWaitQueue<HttpConnection> growing_waiters_;
    std::unique_ptr<Listener> listener_;
    std::shared_ptr<WorkerGeneration> generation_;
    std::thread thread_;
};

}  // namespace scepproxy::proxy
