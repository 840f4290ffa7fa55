// UpstreamPool: hands out idle upstream connections LIFO and takes back only cleanly finished ones.
#include "proxy/upstream/upstream_pool.h"

#include <algorithm>

#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_host.h"

namespace scepproxy::proxy {

UpstreamPool::UpstreamPool(UpstreamHost& host, const conf::ProfileConfig& profile, const UpstreamTarget& target,
                           uint32_t max_idle_connections)
    : host_(host), profile_(profile), target_(target), max_idle_(max_idle_connections) {}

UpstreamPool::~UpstreamPool() {
    close_idle();
    if (tls_session_) SSL_SESSION_free(tls_session_);
}

void UpstreamPool::remember_tls_session(SSL_SESSION* session) {
    if (!session) return;
    if (tls_session_) SSL_SESSION_free(tls_session_);
    tls_session_ = session;
}

UpstreamConnection* UpstreamPool::acquire() {
    while (!idle_.empty()) {
        UpstreamConnection* connection = idle_.back();
        idle_.pop_back();
        if (connection->reusable()) return connection;
        connection->close();
    }
    auto* connection = new UpstreamConnection(host_, *this);
    if (!connection->connect()) {
        connection->close();
        return nullptr;
    }
    return connection;
}

UpstreamExchange* UpstreamPool::start_exchange(ByteBuffer&& request, UpstreamResponseSink& sink) {
    UpstreamConnection* connection = acquire();
    if (connection) connection->send(std::move(request), false, &sink);
    return connection;
}

void UpstreamPool::finish_exchange(UpstreamExchange& exchange) { release(static_cast<UpstreamConnection*>(&exchange)); }

void UpstreamPool::abandon_exchange(UpstreamExchange& exchange) {
    static_cast<UpstreamConnection&>(exchange).abandon();
}

void UpstreamPool::release(UpstreamConnection* connection) {
    if (connection->reusable() && !retired_ && !host_.draining() && idle_.size() < max_idle_) {
        connection->enter_idle();
        idle_.push_back(connection);
        return;
    }
    connection->close();
}

void UpstreamPool::forget_idle(UpstreamConnection* connection) {
    auto it = std::find(idle_.begin(), idle_.end(), connection);
    if (it != idle_.end()) idle_.erase(it);
}

void UpstreamPool::close_idle() {
    auto idle = std::move(idle_);
    idle_.clear();
    for (UpstreamConnection* connection : idle) connection->close();
}

void UpstreamPool::retire() {
    retired_ = true;
    close_idle();
}

}  // namespace scepproxy::proxy
