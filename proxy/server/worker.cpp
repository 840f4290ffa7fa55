// Worker: runs one event loop; accepts on its own SO_REUSEPORT socket; owns its connections and pools.
#include "proxy/server/worker.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/clock.h"
#include "proxy/telemetry/access_log.h"
#include "proxy/telemetry/access_log_batch.h"
#include "proxy/net/http_connection.h"
#include "proxy/telemetry/log.h"
#include "proxy/scep/scep_request_handler.h"
#include "proxy/net/tls_transport.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_pool.h"

namespace scepproxy::proxy {
namespace {

constexpr int64_t kBufferWarningIntervalNs = 10'000'000'000;  // buffered_bytes_limit_reached, process-wide

timeval to_timeval(conf::Duration d) {
    const auto ms = d.count();
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

}  // namespace

WorkerGeneration::WorkerGeneration(Worker& worker, std::shared_ptr<const ServingConfig> serving_config)
    : serving(std::move(serving_config)) {
    for (size_t i = 0; i < serving->profiles.size(); ++i) {
        const ProfileTargets& targets = serving->profiles[i];
        ScepProfile profile;
        profile.targets = &targets;
        profile.metrics = &serving->profile_metrics[i];
        profile.certificates = serving->profile_certificates[i].get();
        for (const auto& upstream : targets.upstreams) {
            pools.push_back(std::make_unique<UpstreamPool>(worker, *targets.profile, upstream,
                                                           targets.profile->max_idle_connections));
            profile.upstreams.push_back(pools.back().get());
        }
        profiles.push_back(std::move(profile));
    }
}

WorkerGeneration::~WorkerGeneration() = default;

void WorkerGeneration::retire() {
    for (auto& pool : pools) pool->retire();
}

void WorkerGeneration::close_idle() {
    for (auto& pool : pools) pool->close_idle();
}

void TransactionFinishLogger::on_transaction_finished(const token::FinishResult& result) {
    if (!result.ok())
        LogLine(LogLevel::warn, "transaction_finish_failed")
            .field("status", token::to_string(result.status))
            .field("detail", result.message)
            .emit();
}

Worker::Worker(unsigned index, const WorkerShared& shared, std::shared_ptr<const ServingConfig> serving, int listen_fd)
    : index_(index),
      shared_(shared),
      listen_fd_(listen_fd),
      metrics_(*shared.metrics),
      generation_(std::make_shared<WorkerGeneration>(*this, std::move(serving))) {}

Worker::~Worker() {
    // The other workers have stopped: nothing wakes this one any more.
    shared_.buffered_bytes->unpark(index_);
    listener_.reset();
    if (connections_) {
        connections_->clear();  // connections abandon their upstream connections...
        generation_.reset();    // ...and the pools close their idle ones,
        connections_->clear();  // all freed here, while the set is still there to free them
        connections_.reset();
    }
    // The store session may still post answers to the task queue until it is gone.
    store_session_.reset();
    tasks_.reset();  // everything holding events goes before the base does
    for (event* e : {stop_event_, shutdown_deadline_event_})
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
    stop_event_ = event_new(base_, stop_fd_, EV_READ | EV_PERSIST, &Worker::on_stop_signal, this);
    shutdown_deadline_event_ = event_new(base_, -1, 0, &Worker::on_shutdown_deadline, this);
    event_add(stop_event_, nullptr);

    tasks_ = std::make_unique<LoopTaskQueue>(base_);
    if (!tasks_->valid()) {
        *error = std::string("eventfd: ") + std::strerror(errno);
        return false;
    }
    store_session_ = shared_.store->open_session([this](std::function<void()> task) { post(std::move(task)); });
    if (!store_session_) {
        *error = "cannot open an enrollment store session";
        return false;
    }
    connections_.emplace(base_, [this] { maybe_finish_drain(); });
    listener_ = std::make_unique<Listener>(base_, listen_fd_, [this](int fd, const SocketAddress& peer) {
        return accept_connection(fd, peer);
    });
    listen_fd_ = -1;  // the listener owns it now
    listener_->use_budget(shared_.connection_budget, index_);
    shared_.connection_budget->set_wake(index_, [this] { post([this] { resume_accepting(); }); });
    set_buffered_bytes_bound();
    shared_.buffered_bytes->set_wake(index_, [this] { post([this] { resume_buffer_waiters(); }); });
    return true;
}

void Worker::start() {
    thread_ = std::thread([this] {
        AccessLogBatch access_log(base_);  // lives as long as the loop: written out when it ends
        access_log.install();
        event_base_dispatch(base_);
    });
}

void Worker::request_stop() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::adopt(std::shared_ptr<const ServingConfig> serving) {
    if (draining_) return;  // stopping anyway: the requests left finish on what they have
    generation_->retire();
    generation_ = std::make_shared<WorkerGeneration>(*this, std::move(serving));
    set_buffered_bytes_bound();  // raised: the waiters are woken
}

// Requests still starting leave room for one largest request's body, charged at once: its input
// buffer, doubling up to its head and body, is less than twice that.
void Worker::set_buffered_bytes_bound() {
    const auto& limits = config().limits;
    shared_.buffered_bytes->set_max(limits.max_buffered_bytes,
                                    2 * (size_t{limits.max_header_bytes} + limits.max_body_bytes));
}

// The listener reserved this connection's place in the connection budget; it is given back when
// the connection closes (or now, when it is refused).
bool Worker::accept_connection(int fd, const SocketAddress& peer) {
    const auto& per_client = config().limits.per_client;
    const LimitKey client = client_limit_key(peer, per_client.ipv4_prefix, per_client.ipv6_prefix);
    auto client_slot = shared_.client_connections->try_acquire(client);
    if (!client_slot) {
        // Refused at accept, before any byte is read or a TLS handshake is paid for.
        ::close(fd);
        shared_.connection_budget->release();
        metrics_.count_refused_connection();
        if (config().log.access_log)
            write_connection_closed_log(kListenerName, peer.to_string(), "client_connection_limit", 0, 0);
        return true;
    }
    std::unique_ptr<Transport> transport;
    // New handshakes use the current certificate; a connection keeps the context it started with.
    if (SSL_CTX* scep_tls = generation_->serving->scep_tls.get()) {
        auto tls = std::make_unique<TlsTransport>(scep_tls, fd, TlsTransport::Role::server);
        if (!tls->valid()) {  // out of memory for this one: it is closed, keep accepting
            shared_.connection_budget->release();
            return true;
        }
        transport = std::move(tls);
    } else {
        transport = std::make_unique<PlainSocketTransport>(fd);
    }
    auto* connection = new HttpConnection(*this, kListenerName, std::move(transport), peer,
                                          std::make_unique<ScepRequestHandler>(*this, client, std::move(*client_slot)));
    connections_->add(connection);
    metrics_.connection_opened();
    connection->start();
    return true;
}

void Worker::connection_closed(HttpConnection* connection) {
    starting_waiters_.remove(connection);
    growing_waiters_.remove(connection);
    connections_->remove(connection);
    metrics_.connection_closed();
    shared_.connection_budget->release();
}

// Woken by the connection budget (a connection closed somewhere while this listener was parked).
void Worker::resume_accepting() {
    if (!draining_) listener_->resume();
}

// The connection stopped reading: it waits in line, and this worker parks in the budget until
// some worker's connections give buffer bytes back.
void Worker::wait_for_buffer_budget(HttpConnection* connection, size_t wanted, bool request_start) {
    (request_start ? growing_waiters_ : starting_waiters_).remove(connection);
    (request_start ? starting_waiters_ : growing_waiters_).push_back(connection);
    BufferedBytesBudget& budget = *shared_.buffered_bytes;
    if (budget.time_to_warn(monotonic_ns(), kBufferWarningIntervalNs))
        LogLine(LogLevel::warn, "buffered_bytes_limit_reached")
            .field("max_buffered_bytes", static_cast<unsigned long long>(budget.max()))
            .field("detail", "connections that need more buffer stop reading until others give theirs back")
            .emit();
    const BufferUse use = request_start ? BufferUse::request_start : BufferUse::growth;
    if (budget.park(index_, wanted, use)) post([this] { resume_buffer_waiters(); });  // room came meanwhile
}

// Woken by the budget: requests under way first, then new ones.
void Worker::resume_buffer_waiters() {
    serve_buffer_waiters(growing_waiters_);
    serve_buffer_waiters(starting_waiters_);
}

// The oldest waiting connections read on until one still finds no room; that one keeps its place
// at the head of the line (and this worker is parked again).
void Worker::serve_buffer_waiters(BufferWaitQueue<HttpConnection>& waiters) {
    while (HttpConnection* connection = waiters.front()) {
        waiters.remove(connection);
        connection->on_buffer_budget();  // may close it (still allocated until the loop iteration ends)
        if (waiters.contains(connection)) {
            waiters.move_to_front(connection);
            return;
        }
    }
}

void Worker::upstream_closed(UpstreamConnection* connection) { connections_->delete_later(connection); }

void Worker::on_stop_signal(int fd, short, void* arg) {
    uint64_t value;
    [[maybe_unused]] const ssize_t n = ::read(fd, &value, sizeof value);
    static_cast<Worker*>(arg)->begin_drain();
}

// Stop accepting; idle connections close now, busy ones after their answer (Connection: close).
void Worker::begin_drain() {
    if (draining_) return;
    draining_ = true;
    listener_->close();
    const timeval deadline = to_timeval(config().limits.shutdown_timeout);
    event_add(shutdown_deadline_event_, &deadline);
    connections_->drain_all();
    generation_->close_idle();
    maybe_finish_drain();
}

void Worker::maybe_finish_drain() {
    if (draining_ && connections_ && connections_->empty()) event_base_loopexit(base_, nullptr);
}

void Worker::on_shutdown_deadline(int, short, void* arg) {
    auto* self = static_cast<Worker*>(arg);
    LogLine(LogLevel::warn, "shutdown_timeout")
        .field("worker", self->index_)
        .field("connections_left", static_cast<unsigned long>(self->connections_->size()))
        .emit();
    event_base_loopbreak(self->base_);
}

}  // namespace scepproxy::proxy
