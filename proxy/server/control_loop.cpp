// ControlLoop: its own event_base and thread; the metrics and admin listeners with the shared HTTP layer.
#include "proxy/server/control_loop.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/net/http_connection.h"
#include "proxy/telemetry/log.h"
#include "proxy/server/metrics_handler.h"
#include "proxy/net/tls_transport.h"

namespace scepproxy::proxy {

namespace {

// Enough threads that store calls need not wait behind every profile's fetches at once.
unsigned admin_pool_threads(const conf::Config& config) {
    unsigned threads = 2;
    for (const auto& profile : config.profiles)
        if (profile.challenge.type == conf::ChallengeType::dynamic) threads += profile.challenge.max_concurrent_fetches;
    return std::min(threads, 32u);
}

}  // namespace

ControlLoop::ControlLoop(std::shared_ptr<const ServingConfig> serving, ProxyMetrics& metrics,
                         token::EnrollmentStore& store)
    : serving_(std::move(serving)), metrics_(metrics), store_(store) {}

ControlLoop::~ControlLoop() {
    // Running admin tasks finish (a fetch may take challenge.timeout) and post into tasks_.
    if (admin_pool_) admin_pool_->stop();
    health_checker_.reset();
    certificate_watcher_.reset();
    listeners_.clear();
    if (connections_) connections_->clear();
    connections_.reset();
    tasks_.reset();  // answers nobody waits for any more
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
    tasks_ = std::make_unique<LoopTaskQueue>(base_);
    if (!tasks_->valid()) {
        *error = "cannot create the control loop's task queue";
        return false;
    }
    connections_.emplace(base_, [this] {
        if (draining_ && connections_->empty()) event_base_loopexit(base_, nullptr);
    });
    const conf::Config& config = *serving_->config;
    if (config.metrics.enabled && !open_listener("metrics", config.metrics.listen, error)) return false;
    if (config.admin.enabled && !init_admin(error)) return false;
    check_upstreams();  // before the loop's thread touches the event_base
    return true;
}

bool ControlLoop::init_admin(std::string* error) {
    admin_pool_ = std::make_unique<BlockingTaskPool>(admin_pool_threads(*serving_->config), kMaxQueuedAdminTasks);
    admin_context_ = std::make_unique<AdminApiContext>(AdminApiContext{serving_, &store_, admin_pool_.get(),
                                                                       tasks_.get(), &draining_});
    return open_listener("admin", serving_->config->admin.listen, error);
}

bool ControlLoop::open_listener(const char* name, const conf::ListenAddress& address, std::string* error) {
    auto addresses = resolve_tcp_address(address.host, address.port, error);
    if (addresses.empty()) return false;
    const int fd = open_listening_socket(addresses.front(), false, 128, error);
    if (fd < 0) return false;
    const bool tls = std::string_view(name) == "admin" && serving_->admin_tls;
    LogLine(LogLevel::info, "listening")
        .field("listener", name)
        .field("address", local_address_of(fd).to_string())
        .field("tls", tls ? "on" : "off")
        .emit();
    listeners_.push_back(std::make_unique<Listener>(base_, fd, [this, name](int client, const SocketAddress& peer) {
        return accept_connection(name, client, peer);
    }));
    return true;
}

bool ControlLoop::accept_connection(const char* name, int fd, const SocketAddress& peer) {
    const bool admin = std::string_view(name) == "admin";
    std::unique_ptr<RequestHandler> handler;
    if (admin)
        handler = std::make_unique<AdminApiHandler>(*admin_context_);
    else
        handler = std::make_unique<MetricsHandler>(metrics_);
    std::unique_ptr<Transport> transport;
    // With client_ca_file, a client certificate it signed is required: no certificate, no handshake.
    if (SSL_CTX* admin_tls = admin ? serving_->admin_tls.get() : nullptr) {
        auto tls = std::make_unique<TlsTransport>(admin_tls, fd, TlsTransport::Role::server);
        if (!tls->valid()) return true;  // dropped (out of memory); keep accepting
        transport = std::move(tls);
    } else {
        transport = std::make_unique<PlainSocketTransport>(fd);
    }
    auto* connection = new HttpConnection(*this, name, std::move(transport), peer, std::move(handler));
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

void ControlLoop::post_serving_config(std::shared_ptr<const ServingConfig> serving, std::function<void()> switched) {
    tasks_->post([this, serving = std::move(serving), switched = std::move(switched)]() mutable {
        adopt(std::move(serving));
        switched();
    });
}

void ControlLoop::adopt(std::shared_ptr<const ServingConfig> serving) {
    const auto previous = std::move(serving_);  // outlives its checker, destroyed just below
    serving_ = std::move(serving);
    if (admin_context_) admin_context_->serving = serving_;
    check_upstreams();
}

// A new configuration's upstreams start in service; the checks judge them from their first interval.
void ControlLoop::check_upstreams() {
    health_checker_ = std::make_unique<UpstreamHealthChecker>(base_, serving_->profiles);
    health_checker_->start();
    // The old watcher goes first: it takes its gauges out, the new one puts back those still true.
    std::vector<UpstreamCertificateWatcher::Known> known;
    if (certificate_watcher_) known = certificate_watcher_->known();
    certificate_watcher_.reset();
    std::vector<ProfileCertificates*> boards;
    for (const auto& board : serving_->profile_certificates) boards.push_back(board.get());
    certificate_watcher_ =
        std::make_unique<UpstreamCertificateWatcher>(base_, serving_->profiles, boards, metrics_, known);
    certificate_watcher_->start();
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
    const auto ms = serving_->config->limits.shutdown_timeout.count();
    const timeval deadline{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    event_base_loopexit(base_, connections_->empty() ? nullptr : &deadline);
}

}  // namespace scepproxy::proxy
