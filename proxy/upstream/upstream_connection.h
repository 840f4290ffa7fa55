// UpstreamConnection: one keep-alive HTTP/1.1 client connection to an upstream SCEP server.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "proxy/net/byte_buffer.h"
#include "proxy/http/http_response_parser.h"
#include "proxy/net/transport.h"
#include "proxy/upstream/upstream_endpoint.h"

struct event;

namespace scepproxy::proxy {

class UpstreamHost;
class UpstreamPool;
struct UpstreamTarget;

enum class UpstreamFailure {
    connect_failed,    // refused, unreachable: 502
    connect_timeout,   // 502 (nothing was sent)
    response_timeout,  // 504
    closed_early,      // closed or reset before a complete response head: 502
    protocol_error,    // unparsable or ambiguous response framing: 502
    body_too_large,    // response over the limit: 502
    tls_error,         // handshake or certificate verification failed: 502
};

const char* to_string(UpstreamFailure failure);

// Receives one response. Calls come on the worker thread; after on_upstream_complete or
// on_upstream_failed, no more calls for this request.
class UpstreamResponseSink {
public:
    virtual void on_upstream_head(const http::HttpResponse& head) = 0;
    virtual void on_upstream_body(std::string_view data) = 0;
    virtual void on_upstream_complete() = 0;
    // request_bytes_sent: whether any byte of the request went out (a PKIOperation is then never re-sent).
    // response_started: whether on_upstream_head was already called.
    virtual void on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) = 0;

protected:
    ~UpstreamResponseSink() = default;
};

class UpstreamConnection final : public UpstreamExchange {
public:
    UpstreamConnection(UpstreamHost& host, UpstreamPool& pool);
    ~UpstreamConnection();
    UpstreamConnection(const UpstreamConnection&) = delete;
    UpstreamConnection& operator=(const UpstreamConnection&) = delete;

    // Starts a non-blocking connect. False: failed at once (the caller releases the connection).
    bool connect();
    // Sends `request` (a complete HTTP/1.1 request with Content-Length framing) and reports to `sink`.
    void send(ByteBuffer&& request, bool head_request, UpstreamResponseSink* sink);
    // The requester went away mid-request: forget the sink (the connection will be closed, never reused).
    void abandon();

    bool reusable() const { return reusable_; }
    bool fresh() const { return requests_sent_ == 0; }
    bool idle() const { return state_ == State::idle; }
    // Called by the pool when it keeps this connection idle / closes it.
    void enter_idle();
    void close();

private:
    enum class State { connecting, idle, sending, awaiting_response, closed };

    static void on_io(int fd, short what, void* arg);
    static void on_timer(int fd, short what, void* arg);
    void handle_io(short what);
    void handle_timer();
    void finish_connect();
    void flush_request();
    void read_response();
    bool feed_response(bool at_eof);
    void fail(UpstreamFailure failure);
    void fail_io(const IoResult& result);
    void complete();
    void arm_timer(int64_t milliseconds);
    bool try_next_address();

    UpstreamHost& host_;
    UpstreamPool& pool_;
    State state_ = State::connecting;
    std::unique_ptr<Transport> transport_;
    event* io_event_ = nullptr;
    event* timer_event_ = nullptr;
    size_t address_index_ = 0;
    bool connected_ = false;
    bool reusable_ = false;
    bool head_request_ = false;
    bool request_bytes_sent_ = false;
    bool send_blocked_ = false;  // this request's write waited for the socket at least once
    bool response_started_ = false;
    uint64_t requests_sent_ = 0;
    ByteBuffer out_;
    ByteBuffer in_;
    http::HttpResponseParser parser_;
    UpstreamResponseSink* sink_ = nullptr;
};

}  // namespace scepproxy::proxy
