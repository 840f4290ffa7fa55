// Listener: a level-triggered accept loop, bounded per wake-up so accepting can't starve serving.
#include "proxy/server/listener.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/clock.h"
#include "proxy/limits/connection_budget.h"
#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {
namespace {
constexpr int kMaxAcceptsPerWakeup = 64;
constexpr int kAcceptRetryMs = 100;                     // after accept() ran out of descriptors or memory
constexpr int64_t kWarningIntervalNs = 10'000'000'000;  // at most one warning of a kind per listener this often
}  // namespace

Listener::Listener(event_base* base, int listen_fd, AcceptCallback on_accept)
    : listen_fd_(listen_fd), on_accept_(std::move(on_accept)) {
    accept_event_ = event_new(base, listen_fd_, EV_READ | EV_PERSIST, &Listener::on_readable, this);
    event_add(accept_event_, nullptr);
    retry_event_ = event_new(base, -1, 0, &Listener::on_retry, this);
}

Listener::~Listener() {
    close();
    if (accept_event_) event_free(accept_event_);
    if (retry_event_) event_free(retry_event_);
}

void Listener::pause() {
    if (paused_ || listen_fd_ < 0) return;
    paused_ = true;
    event_del(accept_event_);
}

void Listener::resume() {
    if (!paused_ || listen_fd_ < 0) return;
    paused_ = false;
    event_add(accept_event_, nullptr);
}

void Listener::close() {
    if (listen_fd_ < 0) return;
    event_del(accept_event_);
    event_del(retry_event_);
    ::close(listen_fd_);
    listen_fd_ = -1;
}

void Listener::on_readable(int, short, void* arg) { static_cast<Listener*>(arg)->accept_ready(); }

// Both warnings repeat while their condition lasts: one line per listener per interval is enough.
bool Listener::time_to_warn(int64_t* last_warning_ns) {
    const int64_t now = monotonic_ns();
    if (*last_warning_ns && now - *last_warning_ns < kWarningIntervalNs) return false;
    *last_warning_ns = now;
    return true;
}

void Listener::warn_budget_full() {
    if (!time_to_warn(&last_full_warning_ns_)) return;
    LogLine(LogLevel::warn, "connection_limit_reached")
        .field("max_connections", static_cast<unsigned long long>(budget_->max()))
        .field("detail", "not accepting until a connection closes; new connections wait in the listen backlog")
        .emit();
}

void Listener::on_retry(int, short, void* arg) { static_cast<Listener*>(arg)->resume(); }

void Listener::accept_ready() {
    for (int i = 0; i < kMaxAcceptsPerWakeup && listen_fd_ >= 0 && !paused_; ++i) {
        // Full: stop accepting rather than accept-and-close; the kernel backlog holds the rest.
        if (budget_ && !budget_->try_reserve()) {
            pause();
            warn_budget_full();
            if (!budget_->park(waiter_)) return;
            resume();
            continue;
        }
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const int error = errno;  // before release(): waking another worker may set errno
            if (budget_) budget_->release();
            if (error == EINTR || error == ECONNABORTED) continue;
            if (error == EAGAIN || error == EWOULDBLOCK) return;
            // EMFILE/ENFILE/ENOBUFS: leave the rest in the backlog and retry a little later rather
            // than spin on a socket that stays readable.
            if (time_to_warn(&last_accept_warning_ns_))
                LogLine(LogLevel::warn, "accept_failed")
                    .field("error", std::strerror(error))
                    .field("detail", "retrying every 100 ms; see descriptor_limit at start-up")
                    .emit();
            pause();
            const timeval retry{0, kAcceptRetryMs * 1000};
            event_add(retry_event_, &retry);
            return;
        }
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        if (!on_accept_(fd, SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), peer_len))) pause();
    }
}

}  // namespace scepproxy::proxy
