// UpstreamConnection: non-blocking connect, request write, streamed response read, with deadlines.
#include "proxy/upstream/upstream_connection.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/invariant.h"
#include "proxy/telemetry/log.h"
#include "proxy/net/tls_transport.h"
#include "proxy/upstream/upstream_host.h"
#include "proxy/upstream/upstream_pool.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kReadChunk = 16384;
constexpr int64_t kIdleKeepMs = 30000;  // shorter than IIS's 120 s, so we close first
// SCEP answers are a few KB: the profile's max_response_bytes bounds the worst case.
http::HttpResponseLimits response_limits(const conf::ProfileConfig& profile) {
    http::HttpResponseLimits limits;
    limits.max_status_line_bytes = 8192;
    limits.max_header_bytes = 65536;
    limits.max_headers = 128;
    limits.max_body_bytes = profile.max_response_bytes;
    return limits;
}

// What a parse error in the answer means for the exchange.
UpstreamFailure failure_of(const http::HttpResponseParser& parser) {
    return parser.error().code == http::HttpErrorCode::upstream_body_too_large ? UpstreamFailure::body_too_large
                                                                               : UpstreamFailure::protocol_error;
}

}  // namespace

const char* to_string(UpstreamFailure failure) {
    switch (failure) {
        case UpstreamFailure::connect_failed: return "upstream_connect_failed";
        case UpstreamFailure::connect_timeout: return "upstream_connect_timeout";
        case UpstreamFailure::response_timeout: return "upstream_timeout";
        case UpstreamFailure::closed_early: return "upstream_closed";
        case UpstreamFailure::protocol_error: return "upstream_protocol_error";
        case UpstreamFailure::body_too_large: return "upstream_body_too_large";
        case UpstreamFailure::tls_error: return "upstream_tls_error";
    }
    return "upstream_error";
}

UpstreamConnection::UpstreamConnection(UpstreamHost& host, UpstreamPool& pool)
    : host_(host), pool_(pool), parser_(response_limits(pool.profile())) {}

UpstreamConnection::~UpstreamConnection() {
    if (io_event_) event_free(io_event_);
    if (timer_event_) event_free(timer_event_);
}

bool UpstreamConnection::connect() {
    timer_event_ = event_new(host_.base(), -1, 0, &UpstreamConnection::on_timer, this);
    arm_timer(pool_.profile().connect_timeout.count());
    return try_next_address();
}

// Starts connecting to the next resolved address; false when none is left.
bool UpstreamConnection::try_next_address() {
    const auto& addresses = pool_.target().addresses;
    while (address_index_ < addresses.size()) {
        const SocketAddress& address = addresses[address_index_++];
        if (io_event_) {
            event_free(io_event_);
            io_event_ = nullptr;
        }
        transport_.reset();
        const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        const UpstreamTarget& target = pool_.target();
        if (target.tls_context) {
            // The handshake runs inside the first write, once the TCP connect completes.
            auto tls = std::make_unique<TlsTransport>(target.tls_context, fd, TlsTransport::Role::client,
                                                      target.config->host, pool_.tls_session());
            if (!tls->valid()) continue;
            transport_ = std::move(tls);
        } else {
            transport_ = std::make_unique<PlainSocketTransport>(fd);
        }
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        if (::connect(fd, address.get(), address.length) != 0 && errno != EINPROGRESS) continue;
        // EV_CLOSED (EPOLLRDHUP): an idle pooled connection learns of the upstream's FIN at once.
        io_event_ = event_new(host_.base(), fd, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET,
                              &UpstreamConnection::on_io, this);
        event_add(io_event_, nullptr);
        state_ = State::connecting;
        return true;
    }
    return false;
}

void UpstreamConnection::send(ByteBuffer&& request, bool head_request, UpstreamResponseSink* sink) {
    // The pool hands out only idle or just-connecting connections: one exchange at a time.
    SCEPPROXY_INVARIANT(state_ == State::idle || state_ == State::connecting,
                        "send on a busy or closed upstream connection");
    SCEPPROXY_INVARIANT(sink_ == nullptr, "send while another request's sink is still attached");
    sink_ = sink;
    out_ = std::move(request);
    head_request_ = head_request;
    request_bytes_sent_ = false;
    send_blocked_ = false;
    response_started_ = false;
    reusable_ = false;  // until a complete, cleanly framed response says otherwise
    parser_.begin(head_request);
    in_.clear();
    ++requests_sent_;
    if (state_ == State::connecting) return;  // flushed once connected
    state_ = State::sending;
    arm_timer(pool_.profile().timeout.count());
    flush_request();
}

void UpstreamConnection::abandon() {
    sink_ = nullptr;
    close();
}

void UpstreamConnection::enter_idle() {
    // Only a cleanly completed exchange is reusable: complete() left it idle, with no sink.
    SCEPPROXY_INVARIANT(state_ == State::idle && sink_ == nullptr, "an upstream connection pooled mid-exchange");
    state_ = State::idle;
    sink_ = nullptr;
    in_.shrink_if_empty(kReadChunk);
    out_.shrink_if_empty(0);
    arm_timer(kIdleKeepMs);
}

void UpstreamConnection::close() {
    if (state_ == State::closed) return;
    if (state_ == State::idle) pool_.forget_idle(this);
    state_ = State::closed;
    reusable_ = false;
    if (io_event_) event_del(io_event_);
    if (timer_event_) event_del(timer_event_);
    transport_.reset();  // closes the socket
    host_.upstream_closed(this);
}

void UpstreamConnection::on_io(int, short what, void* arg) { static_cast<UpstreamConnection*>(arg)->handle_io(what); }

void UpstreamConnection::handle_io(short what) {
    switch (state_) {
        case State::connecting:
            if (what & (EV_WRITE | EV_READ)) finish_connect();
            return;
        case State::idle:
            // Anything on an idle connection (EOF, stray bytes) makes it unusable.
            if (what & (EV_READ | EV_CLOSED)) close();
            return;
        case State::sending:
            if ((what & EV_WRITE) || transport_->write_wants_read()) flush_request();
            if (state_ == State::awaiting_response && (what & (EV_READ | EV_CLOSED))) read_response();
            return;
        case State::awaiting_response:
            if ((what & (EV_READ | EV_CLOSED)) || transport_->read_wants_write()) read_response();
            return;
        case State::closed:
            // close() removed the event: libevent can't call back for it any more.
            SCEPPROXY_INVARIANT(false, "I/O callback on a closed upstream connection");
            return;
    }
}

void UpstreamConnection::finish_connect() {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(transport_->fd(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error == EINPROGRESS || error == EALREADY) return;  // not yet
    if (error != 0) {
        if (try_next_address()) return;
        fail(UpstreamFailure::connect_failed);
        return;
    }
    connected_ = true;
    if (!sink_) {  // connected before anyone asked (not expected): keep it as a fresh idle connection
        state_ = State::idle;
        return;
    }
    state_ = State::sending;
    arm_timer(pool_.profile().timeout.count());
    flush_request();
}

void UpstreamConnection::flush_request() {
    while (!out_.empty()) {
        const iovec part{out_.data(), out_.size()};
        const IoResult r = transport_->write(&part, 1);
        if (r.status == IoStatus::ok) {
            request_bytes_sent_ = true;
            out_.consume(r.bytes);
            continue;
        }
        if (r.status == IoStatus::would_block) {
            send_blocked_ = true;
            return;
        }
        fail_io(r);
        return;
    }
    state_ = State::awaiting_response;
    // Edge-triggered: the answer's readiness edge is still to come, unless the request had to wait
    // for the socket (an early answer's edge may have passed while sending) or TLS holds
    // decrypted bytes no edge announces. Only then look now: otherwise it costs a read per request.
    if (send_blocked_ || transport_->pending() > 0) read_response();
}

void UpstreamConnection::read_response() {
    SCEPPROXY_INVARIANT(state_ == State::awaiting_response, "reading an answer before the request was sent");
    for (;;) {
        char* space = in_.prepare(kReadChunk);
        const size_t room = in_.free_space();
        const IoResult r = transport_->read(space, room);
        if (r.status == IoStatus::ok) {
            in_.commit(r.bytes);
            // A complete answer ends the loop here: a one-segment answer costs one read.
            if (!feed_response(false)) return;
            // Still incomplete: read on until EAGAIN even after a short read. A reset or EOF that
            // came with the last bytes announces no further edge (libevent reports EPOLLERR|EPOLLHUP
            // as READ|WRITE, without EV_CLOSED), so stopping here would wait for the timeout.
            continue;
        }
        if (r.status == IoStatus::would_block) return;
        if (r.status == IoStatus::error && !transport_->failure().empty()) {
            fail_io(r);
            return;
        }
        feed_response(true);  // EOF or reset: may end a close-delimited body, else it's a failure
        return;
    }
}

// Hands parsed data to the sink. False once the exchange is over (complete or failed).
bool UpstreamConnection::feed_response(bool at_eof) {
    if (!response_started_) {
        const http::ParseStatus status = parser_.parse_head(in_.view());
        if (status == http::ParseStatus::error) {
            fail(failure_of(parser_));  // a Content-Length over the limit is refused here, before any body byte
            return false;
        }
        if (status == http::ParseStatus::need_more) {
            if (at_eof) fail(UpstreamFailure::closed_early);
            return !at_eof;
        }
        response_started_ = true;
        if (sink_) sink_->on_upstream_head(parser_.response());
        if (state_ == State::closed) return false;  // the requester went away meanwhile
        in_.consume(parser_.response().head_length);
    }
    std::string_view input = in_.view();
    bool done = false;
    while (!input.empty()) {
        const http::ResponseBodyPiece piece = parser_.read_body(input);
        if (piece.status == http::BodyStatus::error) {
            fail(failure_of(parser_));
            return false;
        }
        if (!piece.data.empty() && sink_) sink_->on_upstream_body(piece.data);  // streamed as it arrives
        if (state_ == State::closed) return false;
        input.remove_prefix(piece.consumed);
        if (piece.status == http::BodyStatus::done) {
            done = true;
            break;
        }
        if (piece.consumed == 0) break;
    }
    in_.consume(in_.size() - input.size());
    if (!done && at_eof) {
        if (parser_.finish_at_eof() != http::BodyStatus::done) {
            fail(UpstreamFailure::closed_early);
            return false;
        }
        done = true;
    }
    if (!done && !at_eof) {
        // A body-less response (204, HEAD, Content-Length: 0) is complete with no input at all.
        const http::ResponseBodyPiece piece = parser_.read_body(std::string_view());
        done = piece.status == http::BodyStatus::done;
    }
    if (!done) return true;
    reusable_ = !at_eof && parser_.connection_reusable();
    if (auto* tls = dynamic_cast<TlsTransport*>(transport_.get())) pool_.remember_tls_session(tls->take_session());
    complete();
    return false;
}

// A write or read error: TLS failures (handshake, certificate) are told apart from plain resets.
void UpstreamConnection::fail_io(const IoResult& result) {
    const std::string why = transport_->failure();
    if (why.empty()) {
        fail(UpstreamFailure::closed_early);
        return;
    }
    LogLine(LogLevel::warn, "upstream_tls_failed").field("upstream", pool_.target().label).field("detail", why).emit();
    fail(UpstreamFailure::tls_error);
}

void UpstreamConnection::complete() {
    SCEPPROXY_INVARIANT(state_ == State::awaiting_response, "an upstream answer completed outside an exchange");
    if (timer_event_) event_del(timer_event_);
    UpstreamResponseSink* sink = sink_;
    sink_ = nullptr;
    state_ = State::idle;  // the sink's release() decides: back to the pool or closed
    if (sink)
        sink->on_upstream_complete();
    else
        close();
}

void UpstreamConnection::fail(UpstreamFailure failure) {
    // An idle or closed connection has no exchange to fail (and its sink must hear nothing more).
    SCEPPROXY_INVARIANT(state_ != State::idle && state_ != State::closed,
                        "an upstream exchange failed outside an exchange");
    UpstreamResponseSink* sink = sink_;
    sink_ = nullptr;
    const bool sent = request_bytes_sent_;
    const bool started = response_started_;
    close();
    if (sink) sink->on_upstream_failed(failure, sent, started);
}

void UpstreamConnection::on_timer(int, short, void* arg) { static_cast<UpstreamConnection*>(arg)->handle_timer(); }

void UpstreamConnection::handle_timer() {
    switch (state_) {
        case State::connecting: fail(UpstreamFailure::connect_timeout); return;
        case State::sending:
        case State::awaiting_response: fail(UpstreamFailure::response_timeout); return;
        case State::idle:
            close();  // kept idle long enough
            return;
        case State::closed: SCEPPROXY_INVARIANT(false, "timer fired on a closed upstream connection"); return;
    }
}

void UpstreamConnection::arm_timer(int64_t milliseconds) {
    const timeval tv{static_cast<time_t>(milliseconds / 1000), static_cast<suseconds_t>((milliseconds % 1000) * 1000)};
    event_add(timer_event_, &tv);
}

}  // namespace scepproxy::proxy
