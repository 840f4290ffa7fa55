// ControlLoop: its own event_base and thread; the metrics listener (admin comes next) with the shared HTTP layer.
#include "proxy/control_loop.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/http_connection.h"
#include "proxy/log.h"
#include "proxy/metrics_handler.h"

namespace scepproxy::proxy {

ControlLoop::ControlLoop(std::shared_ptr<const conf::Config> config, ProxyMetrics& metrics)
    : config_(std::move(config)), metrics_(metrics) {}

ControlLoop::~ControlLoop() {
    listeners_.clear();
    if (connections_) connections_->clear();
    connections_.reset();
    if (stop_event_) event_free(stop_event_);
    if (base_) event_base_free(base_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
}

bool ControlLoop::init(std::string* error) {
    base_ = event_base_new();
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!base_ || stop_fd_ < 0) {
        *error = "cannot create the control event loop";
        return false;
    }
    stop_event_ = event_new(base_, stop_fd_, EV_READ | EV_PERSIST, &ControlLoop::on_stop_signal, this);
    event_add(stop_event_, nullptr);
    connections_.emplace(base_, [this] {
        if (draining_ && connections_->empty()) event_base_loopexit(base_, nullptr);
    });
    if (config_->metrics.enabled && !open_listener("metrics", config_->metrics.listen, error)) return false;
    return true;
}

bool ControlLoop::open_listener(const char* name, const conf::ListenAddress& address, std::string* error) {
    auto addresses = resolve_tcp_address(address.host, address.port, error);
    if (addresses.empty()) return false;
    const int fd = open_listening_socket(addresses.front(), false, 128, error);
    if (fd < 0) return false;
    LogLine(LogLevel::info, "listening").field("listener", name)
        .field("address", local_address_of(fd).to_string()).emit();
    listeners_.push_back(std::make_unique<Listener>(base_, fd, [this, name](int client, const SocketAddress& peer) {
        return accept_connection(name, client, peer);
    }));
    return true;
}

bool ControlLoop::accept_connection(const char* name, int fd, const SocketAddress& peer) {
    auto* connection = new HttpConnection(*this, name, std::make_unique<PlainSocketTransport>(fd), peer,
                                          std::make_unique<MetricsHandler>(metrics_));
    connections_->add(connection);
    connection->start();
    return connections_->size() < kMaxConnections;
}

void ControlLoop::connection_closed(HttpConnection* connection) {
    connections_->remove(connection);
    if (draining_) return;
    for (auto& listener : listeners_)
        if (listener->paused() && connections_->size() < kMaxConnections) listener->resume();
}

void ControlLoop::start() {
    thread_ = std::thread([this] { event_base_dispatch(base_); });
}

void ControlLoop::request_stop() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
}

void ControlLoop::join() {
    if (thread_.joinable()) thread_.join();
}

void ControlLoop::on_stop_signal(int fd, short, void* arg) {
    uint64_t value;
    [[maybe_unused]] const ssize_t n = ::read(fd, &value, sizeof value);
    static_cast<ControlLoop*>(arg)->begin_drain();
}

void ControlLoop::begin_drain() {
    if (draining_) return;
    draining_ = true;
    for (auto& listener : listeners_) listener->close();
    connections_->drain_all();
    // Scrapes are short: whatever is still open when the shutdown timeout ends is cut.
    const auto ms = config_->limits.shutdown_timeout.count();
    const timeval deadline{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    event_base_loopexit(base_, connections_->empty() ? nullptr : &deadline);
}

}  // namespace scepproxy::proxy
