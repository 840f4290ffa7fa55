// Worker: one thread, one libevent event_base, its own listening socket, store session and upstream pools.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.h"
#include "proxy/ca_answer_cache.h"
#include "proxy/connection_host.h"
#include "proxy/upstream_target.h"
#include "token/enrollment_store.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

class HttpConnection;
class UpstreamConnection;
class UpstreamPool;

// What the server shares with every worker (read-only while workers run).
struct WorkerShared {
    std::shared_ptr<const conf::Config> config;
    std::vector<ProfileTargets> profiles;
    token::EnrollmentStore* store = nullptr;
    std::string listener_name = "scep";
};

// A profile's upstreams as this worker sees them: one pool per upstream, round-robin start.
struct WorkerProfile {
    const ProfileTargets* targets = nullptr;
    std::vector<std::unique_ptr<UpstreamPool>> pools;
    size_t next_upstream = 0;
    CaAnswerCache ca_cache;
};

class Worker final : public ConnectionHost {
public:
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
    void connection_closed(HttpConnection* connection) override;  // freed after this loop iteration

    const conf::Config& config() const { return *shared_.config; }
    token::EnrollmentSession& store_session() { return *store_session_; }
    WorkerProfile* find_profile(std::string_view name);
    void upstream_closed(UpstreamConnection* connection);     // freed after this loop iteration
    // Accepted connections this worker holds.
    size_t connection_count() const { return connections_.size(); }

private:
    static void on_accept(int fd, short what, void* arg);
    static void on_stop_signal(int fd, short what, void* arg);
    static void on_reap(int fd, short what, void* arg);
    static void on_shutdown_deadline(int fd, short what, void* arg);
    void accept_ready();
    void begin_drain();
    void reap();
    void schedule_reap();
    void maybe_finish_drain();
    void pause_accepting(bool paused);

    const unsigned index_;
    const WorkerShared& shared_;
    int listen_fd_;
    int stop_fd_ = -1;   // eventfd: the main thread's way to say "stop"
    event_base* base_ = nullptr;
    event* accept_event_ = nullptr;
    event* stop_event_ = nullptr;
    event* reap_event_ = nullptr;
    event* shutdown_deadline_event_ = nullptr;
    bool accepting_paused_ = false;
    bool draining_ = false;
    size_t max_connections_ = 0;     // this worker's share of limits.max_connections

    std::unique_ptr<token::EnrollmentSession> store_session_;
    std::vector<WorkerProfile> profiles_;
    std::vector<HttpConnection*> connections_;            // owned; slot index kept in the connection
    std::vector<HttpConnection*> closed_connections_;     // owned; deleted by reap()
    std::vector<UpstreamConnection*> closed_upstreams_;   // owned; deleted by reap()
    std::thread thread_;
};

}  // namespace scepproxy::proxy
