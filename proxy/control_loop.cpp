// ControlLoop: its own event_base and thread; the metrics and admin listeners with the shared HTTP layer.
#include "proxy/control_loop.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/challenge/secret_file.h"
#include "proxy/http_connection.h"
#include "proxy/log.h"
#include "proxy/metrics_handler.h"
#include "proxy/tls_transport.h"

namespace scepproxy::proxy {

namespace {

constexpr size_t kMinBearerTokenLength = 16;

// Enough threads that store calls need not wait behind every profile's fetches at once.
unsigned admin_pool_threads(const conf::Config& config) {
    unsigned threads = 2;
    for (const auto& profile : config.profiles)
        if (profile.challenge.type == conf::ChallengeType::dynamic) threads += profile.challenge.max_concurrent_fetches;
    return std::min(threads, 32u);
}

}  // namespace

ControlLoop::ControlLoop(std::shared_ptr<const conf::Config> config, ProxyMetrics& metrics,
                         token::EnrollmentStore& store, const challenge::ChallengeSources& challenges)
    : config_(std::move(config)), metrics_(metrics), store_(store), challenges_(challenges) {}

ControlLoop::~ControlLoop() {
    // Running admin tasks finish (a fetch may take challenge.timeout) and post into admin_tasks_.
    if (admin_pool_) admin_pool_->stop();
    listeners_.clear();
    if (connections_) connections_->clear();
    connections_.reset();
    admin_tasks_.reset();  // answers nobody waits for any more
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
    if (config_->admin.enabled && !init_admin(error)) return false;
    return true;
}

bool ControlLoop::init_admin(std::string* error) {
    if (config_->admin.tls) {
        // With client_ca_file, a client certificate it signed is required: no certificate, no handshake.
        admin_tls_ = make_server_tls_context(*config_->admin.tls, error);
        if (!admin_tls_) {
            *error = "admin.tls: " + *error;
            return false;
        }
    }
    auto bearer_token = challenge::read_secret_file(config_->admin.bearer_token_file, error);
    if (!bearer_token) {
        *error = "admin.bearer_token_file: " + *error;
        return false;
    }
    if (bearer_token->size() < kMinBearerTokenLength) {
        *error = "admin.bearer_token_file: the token must be at least 16 characters (e.g. openssl rand -hex 32)";
        return false;
    }
    admin_tasks_ = std::make_unique<LoopTaskQueue>(base_);
    if (!admin_tasks_->valid()) {
        *error = "cannot create the admin task queue";
        return false;
    }
    admin_pool_ = std::make_unique<BlockingTaskPool>(admin_pool_threads(*config_), kMaxQueuedAdminTasks);
    admin_context_ = std::make_unique<AdminApiContext>(AdminApiContext{
        config_, &store_, &challenges_, BearerCredentials(*bearer_token), admin_pool_.get(), admin_tasks_.get(),
        &draining_});
    return open_listener("admin", config_->admin.listen, error);
}

bool ControlLoop::open_listener(const char* name, const conf::ListenAddress& address, std::string* error) {
    auto addresses = resolve_tcp_address(address.host, address.port, error);
    if (addresses.empty()) return false;
    const int fd = open_listening_socket(addresses.front(), false, 128, error);
    if (fd < 0) return false;
    const bool tls = std::string_view(name) == "admin" && admin_tls_;
    LogLine(LogLevel::info, "listening").field("listener", name)
        .field("address", local_address_of(fd).to_string()).field("tls", tls ? "on" : "off").emit();
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
    if (admin && admin_tls_) {
        auto tls = std::make_unique<TlsTransport>(admin_tls_.get(), fd, TlsTransport::Role::server);
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
