// UpstreamHost: what upstream connections and pools need from the loop that owns them (a worker, or the health checker).
#pragma once

struct event_base;

namespace scepproxy::proxy {

class UpstreamConnection;

class UpstreamHost {
public:
    virtual event_base* base() const = 0;
    virtual bool draining() const = 0;  // no connection is kept idle while draining
    // The connection closed itself: the host frees it after the current loop iteration.
    virtual void upstream_closed(UpstreamConnection* connection) = 0;

protected:
    ~UpstreamHost() = default;
};

}  // namespace scepproxy::proxy
