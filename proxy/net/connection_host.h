// ConnectionHost: what an HttpConnection needs from the loop that owns it (a worker, or the control loop).
#pragma once

#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/telemetry/request_outcome.h"

struct event_base;

namespace scepproxy::proxy {

class HttpConnection;

class ConnectionHost {
public:
    virtual event_base* base() const = 0;
    virtual const conf::LimitsConfig& limits() const = 0;
    virtual bool access_log_enabled() const = 0;
    virtual bool draining() const = 0;
    // The connection is done: the host frees it after the current loop iteration.
    virtual void connection_closed(HttpConnection* connection) = 0;
    virtual void request_done(const RequestOutcome& outcome) = 0;
    // A connection deadline expired: "header_timeout", "body_timeout", "idle_timeout" or "send_timeout".
    virtual void deadline_expired(std::string_view reason) = 0;

protected:
    ~ConnectionHost() = default;
};

}  // namespace scepproxy::proxy
