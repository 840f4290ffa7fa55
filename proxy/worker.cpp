// Worker: runs one event loop; accepts on its own SO_REUSEPORT socket; owns its connections and pools.
#include "proxy/worker.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/http_connection.h"
#include "proxy/log.h"
#include "proxy/scep_request_handler.h"
#include "proxy/upstream_connection.h"
#include "proxy/upstream_pool.h"

namespace scepproxy::proxy {
namespace {

constexpr int kMaxAcceptsPerWakeup = 64;  // fairness between accepting and serving

timeval to_timeval(conf::Duration d) {
    const auto ms = d.count();
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

}  // namespace

Worker::Worker(unsigned index, const WorkerShared& shared, int listen_fd)
    : index_(index), shared_(shared), listen_fd_(listen_fd) {}

Worker::~Worker() {
    for (HttpConnection* c : connections_) delete c;
    connections_.clear();
    reap();
    profiles_.clear();  // pools close their idle upstream connections
    reap();
    for (event* e : {accept_event_, stop_event_, reap_event_, shutdown_deadline_event_})
        if (e) event_free(e);
    if (base_) event_base_free(base_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool Worker::init(std::string* error) {
    event_config* cfg = event_config_new();
    // One thread per base and nothing crosses threads but the eventfd: no locks needed.
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    event_config_require_features(cfg, EV_FEATURE_ET | EV_FEATURE_O1);
    base_ = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base_) {
        *error = "cannot create an edge-triggered event loop (epoll)";
        return false;
    }
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd_ < 0) {
        *error = std::string("eventfd: ") + std::strerror(errno);
        return false;
    }
    accept_event_ = event_new(base_, listen_fd_, EV_READ | EV_PERSIST, &Worker::on_accept, this);
    stop_event_ = event_new(base_, stop_fd_, EV_READ | EV_PERSIST, &Worker::on_stop_signal, this);
    reap_event_ = event_new(base_, -1, 0, &Worker::on_reap, this);
    shutdown_deadline_event_ = event_new(base_, -1, 0, &Worker::on_shutdown_deadline, this);
    event_add(accept_event_, nullptr);
    event_add(stop_event_, nullptr);

    const auto& limits = shared_.config->limits;
    const unsigned workers = std::max(1u, shared_.config->workers);
    max_connections_ = std::max<size_t>(1, (limits.max_connections + workers - 1) / workers);

    store_session_ = shared_.store->open_session();
    if (!store_session_) {
        *error = "cannot open an enrollment store session";
        return false;
    }
    for (const auto& targets : shared_.profiles) {
        WorkerProfile profile;
        profile.targets = &targets;
        for (const auto& upstream : targets.upstreams)
            profile.pools.push_back(std::make_unique<UpstreamPool>(*this, *targets.profile, upstream));
        profiles_.push_back(std::move(profile));
    }
    return true;
}

void Worker::start() {
    thread_ = std::thread([this] { event_base_dispatch(base_); });
}

void Worker::request_stop() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

WorkerProfile* Worker::find_profile(std::string_view name) {
    for (auto& p : profiles_)
        if (p.targets->profile->name == name) return &p;
    return nullptr;
}

void Worker::on_accept(int, short, void* arg) { static_cast<Worker*>(arg)->accept_ready(); }

void Worker::accept_ready() {
    for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
        if (connections_.size() >= max_connections_) {
            // Full: stop accepting (the kernel backlog holds newcomers) rather than accept-and-close.
            pause_accepting(true);
            LogLine(LogLevel::warn, "connection_limit").field("worker", index_)
                .field("max_connections", static_cast<unsigned long>(max_connections_)).emit();
            return;
        }
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on a readable listener.
            LogLine(LogLevel::warn, "accept_failed").field("error", std::strerror(errno)).emit();
            return;
        }
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        auto* connection = new HttpConnection(*this, shared_.listener_name, std::make_unique<PlainSocketTransport>(fd),
                                              SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), peer_len),
                                              std::make_unique<ScepRequestHandler>(*this));
        connection->set_slot(connections_.size());
        connections_.push_back(connection);
        connection->start();
    }
}

void Worker::pause_accepting(bool paused) {
    if (paused == accepting_paused_ || draining_) return;
    accepting_paused_ = paused;
    if (paused)
        event_del(accept_event_);
    else
        event_add(accept_event_, nullptr);
}

void Worker::connection_closed(HttpConnection* connection) {
    const size_t slot = connection->slot();
    if (slot < connections_.size() && connections_[slot] == connection) {
        connections_[slot] = connections_.back();
        connections_[slot]->set_slot(slot);
        connections_.pop_back();
    }
    closed_connections_.push_back(connection);
    schedule_reap();
    if (accepting_paused_ && connections_.size() < max_connections_) pause_accepting(false);
}

void Worker::upstream_closed(UpstreamConnection* connection) {
    closed_upstreams_.push_back(connection);
    schedule_reap();
}

void Worker::schedule_reap() {
    if (reap_event_ && !event_pending(reap_event_, EV_TIMEOUT, nullptr)) event_active(reap_event_, EV_TIMEOUT, 0);
}

void Worker::on_reap(int, short, void* arg) { static_cast<Worker*>(arg)->reap(); }

// Objects are freed here, after the callbacks that closed them have returned.
void Worker::reap() {
    while (!closed_connections_.empty() || !closed_upstreams_.empty()) {
        auto connections = std::move(closed_connections_);
        closed_connections_.clear();
        for (HttpConnection* c : connections) delete c;
        auto upstreams = std::move(closed_upstreams_);
        closed_upstreams_.clear();
        for (UpstreamConnection* u : upstreams) delete u;
    }
    maybe_finish_drain();
}

void Worker::on_stop_signal(int fd, short, void* arg) {
    uint64_t value;
    [[maybe_unused]] const ssize_t n = ::read(fd, &value, sizeof value);
    static_cast<Worker*>(arg)->begin_drain();
}

// Stop accepting; idle connections close now, busy ones after their response (Connection: close).
void Worker::begin_drain() {
    if (draining_) return;
    draining_ = true;
    event_del(accept_event_);
    ::close(listen_fd_);
    listen_fd_ = -1;
    const timeval deadline = to_timeval(shared_.config->limits.shutdown_timeout);
    event_add(shutdown_deadline_event_, &deadline);
    const auto snapshot = connections_;
    for (HttpConnection* c : snapshot) c->on_drain();
    for (auto& profile : profiles_)
        for (auto& pool : profile.pools) pool->close_idle();
    maybe_finish_drain();
}

void Worker::maybe_finish_drain() {
    if (draining_ && connections_.empty()) event_base_loopexit(base_, nullptr);
}

void Worker::on_shutdown_deadline(int, short, void* arg) {
    auto* self = static_cast<Worker*>(arg);
    LogLine(LogLevel::warn, "shutdown_timeout").field("worker", self->index_)
        .field("connections_left", static_cast<unsigned long>(self->connections_.size())).emit();
    event_base_loopbreak(self->base_);
}

}  // namespace scepproxy::proxy
