// Listener: a level-triggered accept loop, bounded per wake-up so accepting can't starve serving.
#include "proxy/listener.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/log.h"

namespace scepproxy::proxy {
namespace {
constexpr int kMaxAcceptsPerWakeup = 64;
}

Listener::Listener(event_base* base, int listen_fd, AcceptCallback on_accept)
    : listen_fd_(listen_fd), on_accept_(std::move(on_accept)) {
    accept_event_ = event_new(base, listen_fd_, EV_READ | EV_PERSIST, &Listener::on_readable, this);
    event_add(accept_event_, nullptr);
}

Listener::~Listener() {
    close();
    if (accept_event_) event_free(accept_event_);
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
    ::close(listen_fd_);
    listen_fd_ = -1;
}

void Listener::on_readable(int, short, void* arg) { static_cast<Listener*>(arg)->accept_ready(); }

void Listener::accept_ready() {
    for (int i = 0; i < kMaxAcceptsPerWakeup && listen_fd_ >= 0 && !paused_; ++i) {
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            // EMFILE/ENFILE/ENOBUFS: leave the rest in the backlog rather than spin.
            LogLine(LogLevel::warn, "accept_failed").field("error", std::strerror(errno)).emit();
            return;
        }
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        if (!on_accept_(fd, SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), peer_len))) pause();
    }
}

}  // namespace scepproxy::proxy
