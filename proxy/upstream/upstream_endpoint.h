// UpstreamEndpoint: what a request needs from one upstream — start an exchange, hand its connection back (faked in tests).
#pragma once

#include "proxy/net/byte_buffer.h"

namespace scepproxy::proxy {

class UpstreamResponseSink;
struct UpstreamTarget;

// One request/response on an upstream connection, seen from the requester: an opaque handle.
class UpstreamExchange {
protected:
    ~UpstreamExchange() = default;
};

class UpstreamEndpoint {
public:
    virtual const UpstreamTarget& target() const = 0;
    // Sends `request` (complete, Content-Length framed) on an idle or new connection; the answer
    // goes to `sink`. Null when no connection could even be started (nothing is reported then).
    virtual UpstreamExchange* start_exchange(ByteBuffer&& request, UpstreamResponseSink& sink) = 0;
    // The exchange reported on_upstream_complete: its connection may serve the next request.
    virtual void finish_exchange(UpstreamExchange& exchange) = 0;
    // The requester went away mid-exchange: no more reports; the connection is closed, never reused.
    virtual void abandon_exchange(UpstreamExchange& exchange) = 0;

protected:
    ~UpstreamEndpoint() = default;
};

}  // namespace scepproxy::proxy
