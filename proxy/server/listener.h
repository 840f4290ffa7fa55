// Listener: accepts connections on one listening socket for one event loop and hands them to a callback.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "proxy/net/socket_address.h"

struct event;
struct event_base;

namespace scepproxy::proxy {

class ConnectionBudget;

class Listener {
public:
    // Called with each accepted, non-blocking, TCP_NODELAY socket; the callee owns the fd.
    // Returns false when the host is full: the listener pauses (the kernel backlog holds newcomers).
    using AcceptCallback = std::function<bool(int fd, const SocketAddress& peer)>;

    Listener(event_base* base, int listen_fd, AcceptCallback on_accept);
    // Each accept first reserves a slot in `budget` (the accepted socket's owner releases it); when
    // the budget is full the listener pauses and parks as waiter `waiter` until resume() is called.
    void use_budget(ConnectionBudget* budget, size_t waiter) {
        budget_ = budget;
        waiter_ = waiter;
    }
    ~Listener();  // closes the listening socket
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    void pause();
    void resume();
    bool paused() const { return paused_; }
    void close();

private:
    static void on_readable(int fd, short what, void* arg);
    static void on_retry(int fd, short what, void* arg);
    void accept_ready();
    void warn_budget_full();
    static bool time_to_warn(int64_t* last_warning_ns);

    int listen_fd_;
    event* accept_event_ = nullptr;
    event* retry_event_ = nullptr;
    AcceptCallback on_accept_;
    bool paused_ = false;
    ConnectionBudget* budget_ = nullptr;
    size_t waiter_ = 0;
    int64_t last_full_warning_ns_ = 0;
    int64_t last_accept_warning_ns_ = 0;
};

}  // namespace scepproxy::proxy
