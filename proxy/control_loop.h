// ControlLoop: one thread serving the operator-facing listeners (metrics; the admin API next), off the data path.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.h"
#include "proxy/connection_host.h"
#include "proxy/connection_set.h"
#include "proxy/listener.h"
#include "proxy/metrics.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

class ControlLoop final : public ConnectionHost {
public:
    ControlLoop(std::shared_ptr<const conf::Config> config, ProxyMetrics& metrics);
    ~ControlLoop();
    ControlLoop(const ControlLoop&) = delete;
    ControlLoop& operator=(const ControlLoop&) = delete;

    // Opens the configured listeners and logs where they listen. False with *error on failure.
    bool init(std::string* error);
    void start();
    void request_stop();  // thread-safe
    void join();

    event_base* base() const override { return base_; }
    const conf::LimitsConfig& limits() const override { return config_->limits; }
    bool access_log_enabled() const override { return false; }  // scrapes every few seconds would drown the log
    bool draining() const override { return draining_; }
    void connection_closed(HttpConnection* connection) override;
    void request_done(const RequestOutcome&) override {}

private:
    static constexpr size_t kMaxConnections = 256;  // operators' tools, not devices

    static void on_stop_signal(int fd, short what, void* arg);
    bool open_listener(const char* name, const conf::ListenAddress& address, std::string* error);
    bool accept_connection(const char* name, int fd, const SocketAddress& peer);
    void begin_drain();

    std::shared_ptr<const conf::Config> config_;
    ProxyMetrics& metrics_;
    event_base* base_ = nullptr;
    int stop_fd_ = -1;
    event* stop_event_ = nullptr;
    bool draining_ = false;
    std::optional<ConnectionSet> connections_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::thread thread_;
};

}  // namespace scepproxy::proxy
