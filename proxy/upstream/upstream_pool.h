// UpstreamPool: one loop's idle keep-alive connections to one upstream (no locks: per worker, or the health checker's).
#pragma once

#include <openssl/ssl.h>

#include <vector>

#include "conf/config.h"
#include "proxy/upstream/upstream_endpoint.h"
#include "proxy/upstream/upstream_target.h"

namespace scepproxy::proxy {

class UpstreamConnection;
class UpstreamHost;

class UpstreamPool final : public UpstreamEndpoint {
public:
    // max_idle_connections: 0 closes each connection after its exchange.
    UpstreamPool(UpstreamHost& host, const conf::ProfileConfig& profile, const UpstreamTarget& target,
                 uint32_t max_idle_connections);
    ~UpstreamPool();
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // An idle connection (most recently used first) or a new one that is connecting.
    // nullptr if a new connection can't even be started (e.g. out of sockets).
    UpstreamConnection* acquire();
    // Back to the idle list if it finished a response cleanly and there is room; else closed.
    void release(UpstreamConnection* connection);
    // An idle connection that the upstream closed (or that timed out idle) leaves the list.
    void forget_idle(UpstreamConnection* connection);
    void close_idle();
    // A reload replaced this pool's configuration: connections in use close when done, none idle.
    void retire();

    // UpstreamEndpoint, for requests: acquire + send, release, abandon.
    UpstreamExchange* start_exchange(ByteBuffer&& request, UpstreamResponseSink& sink) override;
    void finish_exchange(UpstreamExchange& exchange) override;
    void abandon_exchange(UpstreamExchange& exchange) override;

    const UpstreamTarget& target() const override { return target_; }
    // https: the last session this worker had with the upstream, offered for resumption (may be null).
    SSL_SESSION* tls_session() const { return tls_session_; }
    void remember_tls_session(SSL_SESSION* session);  // takes the reference
    const conf::ProfileConfig& profile() const { return profile_; }

private:
    UpstreamHost& host_;
    const conf::ProfileConfig& profile_;
    const UpstreamTarget& target_;
    const size_t max_idle_;
    std::vector<UpstreamConnection*> idle_;
    bool retired_ = false;
    SSL_SESSION* tls_session_ = nullptr;
};

}  // namespace scepproxy::proxy
