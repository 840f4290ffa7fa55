// ConnectionSet: the inbound connections one event loop owns, and objects freed after the current loop iteration.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

struct event;
struct event_base;

namespace scepproxy::proxy {

class HttpConnection;

class ConnectionSet {
public:
    // after_reap: called after deferred deletions ran (e.g. to finish a drain once empty).
    ConnectionSet(event_base* base, std::function<void()> after_reap);
    ~ConnectionSet();  // frees every connection and pending deletion
    ConnectionSet(const ConnectionSet&) = delete;
    ConnectionSet& operator=(const ConnectionSet&) = delete;

    void add(HttpConnection* connection);     // takes ownership
    void remove(HttpConnection* connection);  // closed: freed after this loop iteration
    size_t size() const { return connections_.size(); }
    bool empty() const { return connections_.empty(); }
    void drain_all();  // tells each connection the loop is stopping
    // Frees every connection and every pending deletion now (loop teardown; what they free
    // in turn through delete_later is freed too).
    void clear();

    // Frees `object` once the callbacks now on the stack have returned (never inside its own callback).
    template <class T>
    void delete_later(T* object) {
        pending_.push_back([object] { delete object; });
        schedule_reap();
    }

private:
    static void on_reap(int fd, short what, void* arg);
    void schedule_reap();
    void reap();

    std::vector<HttpConnection*> connections_;  // slot index kept in each connection
    std::vector<std::function<void()>> pending_;
    event* reap_event_ = nullptr;
    std::function<void()> after_reap_;
};

}  // namespace scepproxy::proxy
