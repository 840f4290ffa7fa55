// ConnectionHost: what an HttpConnection needs from the loop that owns it (a worker, or the control loop).
#pragma once

#include <cstddef>
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

    // Request buffer memory, taken before a buffer grows into it and given back when it shrinks
    // (a worker counts it against limits.max_buffered_bytes; by default there is no bound).
    // request_start: for a request whose head isn't parsed yet, which a host may hold back while
    // requests under way need the room to finish. false: no room now; the connection stops
    // reading and calls wait_for_buffer_budget.
    virtual bool charge_buffer(size_t /*bytes*/, bool /*request_start*/) { return true; }
    virtual void credit_buffer(size_t /*bytes*/) {}
    // The connection needs `wanted` more bytes: the host calls its on_buffer_budget() once there may
    // be room (it forgets the connection when it closes).
    virtual void wait_for_buffer_budget(HttpConnection* /*connection*/, size_t /*wanted*/, bool /*request_start*/) {}

protected:
    ~ConnectionHost() = default;
};

}  // namespace scepproxy::proxy
