// Listener: accepts connections on one listening socket for one event loop and hands them to a callback.
#pragma once

#include <functional>

#include "proxy/socket_address.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

class Listener {
public:
    // Called with each accepted, non-blocking, TCP_NODELAY socket; the callee owns the fd.
    // Returns false when the host is full: the listener pauses (the kernel backlog holds newcomers).
    using AcceptCallback = std::function<bool(int fd, const SocketAddress& peer)>;

    Listener(event_base* base, int listen_fd, AcceptCallback on_accept);
    ~Listener();  // closes the listening socket
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    void pause();
    void resume();
    bool paused() const { return paused_; }
    void close();

private:
    static void on_readable(int fd, short what, void* arg);
    void accept_ready();

    int listen_fd_;
    event* accept_event_ = nullptr;
    AcceptCallback on_accept_;
    bool paused_ = false;
};

}  // namespace scepproxy::proxy
