// HttpConnection: the inbound request state machine (edge-triggered, one request in flight, pipelining-safe).
#include "proxy/net/http_connection.h"

#include <event2/event.h>
#include <sys/socket.h>

#include <algorithm>

#include "proxy/telemetry/access_log.h"
#include "base/clock.h"
#include "base/invariant.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kReadChunk = 16384;
constexpr size_t kFirstDecodedBlock = 4096;  // a chunked body's first decoding buffer
// Where a request's first bytes and a lingering connection's discarded input are read (one loop, one thread).
thread_local char read_aside[kReadChunk];
constexpr int64_t kLingerMs = 2000;  // how long a closing connection keeps discarding input
// After a 408 the client is slow by definition: the answer gets a short linger, so that no slow
// connection outlives its deadline by more than this.
constexpr int64_t kDeadlineLingerMs = 500;

http::HttpLimits limits_from(const conf::LimitsConfig& limits) {
    http::HttpLimits http_limits;
    http_limits.max_request_line_bytes = limits.max_request_line_bytes;
    http_limits.max_header_bytes = limits.max_header_bytes;
    http_limits.max_headers = limits.max_headers;
    http_limits.max_body_bytes = limits.max_body_bytes;
    return http_limits;
}

}  // namespace

HttpConnection::HttpConnection(ConnectionHost& host, std::string_view listener_name,
                               std::unique_ptr<Transport> transport, const SocketAddress& peer,
                               std::unique_ptr<RequestHandler> handler)
    : host_(host),
      listener_name_(listener_name),
      transport_(std::move(transport)),
      peer_text_(peer.to_string()),
      handler_(std::move(handler)),
      parser_(limits_from(host.limits())),
      linger_ms_(kLingerMs),
      max_body_bytes_(host.limits().max_body_bytes) {}

HttpConnection::~HttpConnection() {
    if (state_ == State::handling) handler_->on_abort();
    if (charged_) host_.credit_buffer(charged_);
    if (io_event_) event_free(io_event_);
    if (timer_event_) event_free(timer_event_);
}

size_t HttpConnection::buffered_capacity() const {
    // An empty std::string's capacity is its inline (small-string) buffer: nothing allocated.
    const size_t decoded = decoded_body_.capacity() > std::string().capacity() ? decoded_body_.capacity() : 0;
    return in_.capacity() + decoded;
}

void HttpConnection::on_buffer_budget() {
    if (state_ != State::closed) read_input();
}

// Before a request buffer grows by `bytes`: false when the host has no room now, and then the
// connection stops reading until the host calls on_buffer_budget().
bool HttpConnection::charge_buffer(size_t bytes, bool request_start) {
    if (bytes == 0) return true;
    if (!host_.charge_buffer(bytes, request_start)) {
        read_pending_ = true;
        host_.wait_for_buffer_budget(this, bytes, request_start);
        return false;
    }
    charged_ += bytes;
    return true;
}

// After the buffers shrank: what they no longer hold goes back to the host.
void HttpConnection::settle_buffer_charge() {
    const size_t held = buffered_capacity();
    if (held >= charged_) return;
    host_.credit_buffer(charged_ - held);
    charged_ = held;
}

// No request bytes left to keep (between requests, closing): the buffers' storage goes back.
void HttpConnection::release_buffers() {
    in_.clear();
    in_.shrink_if_empty(0);
    std::string().swap(decoded_body_);
    settle_buffer_charge();
}

void HttpConnection::start() {
    accepted_ns_ = monotonic_ns();
    // Registered once for both directions, edge-triggered: no epoll_ctl per request. EV_CLOSED
    // (EPOLLRDHUP) tells a FIN that came with the last bytes apart from a drained socket.
    io_event_ = event_new(host_.base(), transport_->fd(), EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET,
                          &HttpConnection::on_io, this);
    timer_event_ = event_new(host_.base(), -1, 0, &HttpConnection::on_timer, this);
    event_add(io_event_, nullptr);
    arm_timer(TimerPurpose::header, host_.limits().header_timeout.count());
    read_input();
}

void HttpConnection::on_drain() {
    close_after_response_ = true;
    if (state_ == State::reading_head && in_.empty()) close_now();
}

void HttpConnection::on_io(int, short what, void* arg) { static_cast<HttpConnection*>(arg)->handle_io(what); }

void HttpConnection::handle_io(short what) {
    // close_now() removed the event: libevent can't call back for it any more.
    SCEPPROXY_INVARIANT(state_ != State::closed, "I/O callback on a closed client connection");
    if (state_ == State::closed) return;
    // TLS may need the other direction to progress (a handshake): retry on either event then.
    if ((what & EV_WRITE) || transport_->write_wants_read()) {
        write_blocked_ = false;
        if (!out_.empty()) flush_output();
        if (state_ == State::closed) return;
    }
    if (what & EV_CLOSED) fin_announced_ = true;
    if ((what & (EV_READ | EV_CLOSED)) || transport_->read_wants_write()) read_input();
}

void HttpConnection::read_input() {
    // Reading on would hand the next request to the handler of a connection that is gone.
    SCEPPROXY_INVARIANT(state_ != State::closed, "read_input on a closed client connection");
    for (;;) {
        if (state_ == State::handling || state_ == State::finishing) {
            read_pending_ = true;  // picked up after the answer (pipelining: one request at a time)
            return;
        }
        const bool head_unparsed = state_ == State::reading_head;
        const ReadStop stop = read_available();
        if (stop == ReadStop::closed || state_ == State::lingering) return;
        process_input();
        if (!head_unparsed || !read_on_after_parse(stop)) return;
    }
}

// Reading stopped while a head was unparsed (to parse it, or short of budget for a request still
// starting): go on now if the head is in (its body is read, and charged, as a request under way),
// or if the parser has seen every byte and needs more.
bool HttpConnection::read_on_after_parse(ReadStop stop) const {
    if (state_ == State::reading_body) return stop != ReadStop::drained;
    return state_ == State::reading_head && stop == ReadStop::parse_first && head_parsed_size_ == in_.size();
}

// Reads what the transport has, up to a limit or the budget (read_pending_ then).
HttpConnection::ReadStop HttpConnection::read_available() {
    read_pending_ = false;
    const auto& limits = host_.limits();
    // A full head, a full body and a pipelined head: the parser rejects before this fills.
    const size_t max_buffered = size_t{limits.max_header_bytes} * 2 + limits.max_body_bytes;
    const bool discard = state_ == State::lingering;
    for (;;) {
        // Before its head is parsed, a request's buffer grows only once the parser has seen what it
        // holds, and no further than a head may be long (with one byte more the parser has either
        // the head or its 431): a body is read once its length is known.
        const bool head_unparsed = state_ == State::reading_head;
        const size_t limit = head_unparsed ? size_t{limits.max_header_bytes} + 1 : max_buffered;
        if (!discard &&
            (in_.size() >= limit || (head_unparsed && in_.free_space() == 0 && in_.size() != head_parsed_size_))) {
            read_pending_ = true;
            return head_unparsed ? ReadStop::parse_first : ReadStop::limit;
        }
        // Discarded input is read aside: a lingering connection holds no buffer.
        const ReadSpace space = discard ? ReadSpace{read_aside, sizeof read_aside, false} : space_to_read(limit);
        if (space.data == nullptr) return ReadStop::budget;  // waiting for it (read_pending_)
        const IoResult r = transport_->read(space.data, space.size);
        if (r.status == IoStatus::ok) {
            if (discard) continue;  // thrown away
            commit_read(space, r.bytes);
            // A short read means drained, unless a FIN waits behind the data: it brings no edge of
            // its own, so stopping here would wait for the header timeout.
            if (r.bytes < space.size && transport_->short_read_means_drained() && !fin_announced_)
                return ReadStop::drained;
            continue;
        }
        if (!discard) give_back_read_space(space);
        if (r.status == IoStatus::would_block) return ReadStop::drained;
        if (r.status == IoStatus::closed && r.error_code == 0 && !discard) {
            // The client is done sending (a half-close): what it sent in full is still answered,
            // then the connection closes; a request cut short is abandoned (process_input).
            input_closed_ = true;
            close_after_response_ = true;
            return ReadStop::drained;
        }
        close_now();  // an error or a reset: whatever was sent is abandoned
        return ReadStop::closed;
    }
}

// Where the next read goes. A request's first bytes (in_ holds no storage: a new connection, or
// a kept-alive one between requests) are read aside (a per-thread block) and then copied into a
// buffer of their size, so that a connection with nothing to say holds no buffer and a small
// request a small one. Later reads go into what in_ has free; a full in_ doubles. Every growth is
// charged to the host's budget before it happens, as a request still starting until its head is
// parsed; a Content-Length body is charged whole when it is first grown for, so that a request
// the budget let in never waits for the rest of its body.
HttpConnection::ReadSpace HttpConnection::space_to_read(size_t limit) {
    if (in_.capacity() == 0) {
        const size_t room = std::min(sizeof read_aside, limit);
        // What in_ may need for them, taken first; what it doesn't need is given back in commit_read.
        if (!charge_buffer(in_.capacity_for(room), true)) return {};
        return ReadSpace{read_aside, room, true};
    }
    size_t wanted = 1;  // reads go into what is free; a full buffer doubles
    if (state_ == State::reading_body && !parser_.request().chunked) {
        const size_t request_bytes = head_length_ + static_cast<size_t>(*parser_.request().content_length);
        if (request_bytes > in_.size()) wanted = std::max(wanted, request_bytes - in_.size());
    }
    if (in_.free_space() < wanted) {
        const size_t grown = in_.capacity_for(wanted);
        const bool starting = state_ != State::reading_body;
        if (grown > in_.capacity() && !charge_buffer(grown - in_.capacity(), starting)) return {};
    }
    char* data = in_.prepare(wanted);
    return ReadSpace{data, std::min(in_.free_space(), limit - in_.size()), false};
}

void HttpConnection::commit_read(const ReadSpace& space, size_t bytes) {
    if (!space.first_block) {
        in_.commit(bytes);
        return;
    }
    in_.append(std::string_view(space.data, bytes));
    settle_buffer_charge();
}

// Nothing was read: a first block's charge goes back (in_ still holds nothing).
void HttpConnection::give_back_read_space(const ReadSpace& space) {
    if (space.first_block) settle_buffer_charge();
}

// Room in decoded_body_ for what `input_bytes` of chunked framing can decode to (at most that many
// bytes, and never past max_body_bytes): grown geometrically, so a body costs amortized copies,
// and charged first. Nothing is taken for a body before its bytes are here.
bool HttpConnection::make_room_to_decode(size_t input_bytes) {
    const size_t size = decoded_body_.size();
    const size_t needed = size + std::min(input_bytes, max_body_bytes_ - std::min(size, max_body_bytes_));
    if (needed <= decoded_body_.capacity()) return true;
    const size_t held = buffered_capacity() - in_.capacity();
    const size_t grown = std::min(max_body_bytes_, std::max({needed, 2 * held, kFirstDecodedBlock}));
    if (grown <= held) return true;  // (a lowered limit): the parser rejects what doesn't fit
    if (!charge_buffer(grown - held)) return false;
    std::string bigger;
    bigger.reserve(grown);  // a new string: exactly this much (reserve() on a full one may double)
    bigger.append(decoded_body_);
    decoded_body_.swap(bigger);
    return true;
}

void HttpConnection::process_input() {
    // Answers that complete inline call back in here for the next pipelined request:
    // the outer loop carries on instead of recursing once per request.
    if (processing_input_) return;
    processing_input_ = true;
    process_buffered_requests();
    processing_input_ = false;
    // Waiting for bytes that can't come any more: nothing left to answer.
    if (input_closed_ && (state_ == State::reading_head || state_ == State::reading_body)) close_now();
}

void HttpConnection::process_buffered_requests() {
    while (state_ == State::reading_head || state_ == State::reading_body) {
        if (state_ == State::reading_head) {
            if (in_.empty() || !parse_head()) return;
        }
        if (state_ == State::reading_body && !read_body()) return;
        hand_to_handler();
    }
}

// True when the head is complete; false to wait for more bytes or after a rejection.
bool HttpConnection::parse_head() {
    // The header deadline is total, from the request's first byte, not an inactivity timer.
    if (timer_purpose_ != TimerPurpose::header) arm_timer(TimerPurpose::header, host_.limits().header_timeout.count());
    const http::ParseStatus status = parser_.parse_head(in_.view());
    if (status == http::ParseStatus::need_more) {
        head_parsed_size_ = in_.size();
        return false;
    }
    request_start_ns_ = monotonic_ns();
    if (status == http::ParseStatus::error) {
        reject(parser_.error());
        return false;
    }
    const http::HttpRequest& request = parser_.request();
    head_base_ = in_.data();
    head_length_ = request.head_length;
    keep_alive_ = request.keep_alive;
    http10_ = request.version == http::HttpVersion::http_1_0;
    body_ = {};
    decoded_body_.clear();
    body_consumed_ = 0;
    if (!parser_.has_body()) {
        state_ = State::handling;
        disarm_timer();
        return true;
    }
    state_ = State::reading_body;
    body_deadline_ns_ = monotonic_ns() + host_.limits().body_timeout.count() * 1'000'000;
    arm_timer(TimerPurpose::body, host_.limits().body_timeout.count());
    // The client waits for this before sending its body, unless the body is already here.
    if (request.expect_continue && in_.size() == head_length_) {
        out_.append("HTTP/1.1 100 Continue\r\n\r\n");
        flush_output();
    }
    return true;
}

// True when the whole body has arrived.
bool HttpConnection::read_body() {
    const http::HttpRequest& request = parser_.request();
    if (!request.chunked) {
        // Content-Length: not copied; complete once in_ holds all of it after the head.
        if (in_.size() - head_length_ < *request.content_length) return false;
        body_consumed_ = *request.content_length;
    } else {
        const size_t offset = head_length_ + body_consumed_;
        if (!make_room_to_decode(in_.size() - offset)) return false;  // waiting for buffer budget
        const http::RequestBodyProgress progress =
            parser_.read_body(std::string_view(in_.data() + offset, in_.size() - offset), decoded_body_);
        body_consumed_ += progress.consumed;
        if (progress.status == http::ParseStatus::error) {
            reject(parser_.error());
            return false;
        }
        if (progress.status == http::ParseStatus::need_more) return false;
    }
    state_ = State::handling;
    disarm_timer();
    return true;
}

void HttpConnection::hand_to_handler() {
    if (in_.data() != head_base_) {
        // The buffer grew or moved while the body arrived: the parsed head's views point at the old
        // place. Parsing the same bytes again gives the same answer with views into the new one.
        parser_.reset();
        parser_.parse_head(in_.view());
    }
    const http::HttpRequest& request = parser_.request();
    if (request.chunked)
        body_ = decoded_body_;
    else if (parser_.has_body())
        body_ = std::string_view(in_.data() + head_length_, *request.content_length);
    state_ = State::handling;
    response_started_ = false;
    handler_->on_request(*this, IncomingRequest{request, body_});
}

// Malformed or over a limit: answer with the parser's status and reason, then close
// (after a framing error nothing that follows can be trusted).
void HttpConnection::reject(const http::HttpError& error) {
    state_ = State::handling;
    respond_text(error.status, error.reason(), error.reason(), true);
}

ConnectionHeader HttpConnection::connection_header() {
    if (close_after_response_ || host_.draining()) keep_alive_ = false;
    return !keep_alive_ ? ConnectionHeader::close : http10_ ? ConnectionHeader::keep_alive : ConnectionHeader::none;
}

void HttpConnection::respond_text(int status, std::string_view reason, std::string_view body, bool close_after,
                                  std::string_view extra_header_lines) {
    SCEPPROXY_INVARIANT(state_ == State::handling, "respond_text with no request in flight");
    // A second head after a streamed one began would corrupt the answer on the wire.
    SCEPPROXY_INVARIANT(!response_started_, "respond_text after begin_response");
    if (state_ != State::handling) return;
    if (close_after) keep_alive_ = false;
    if (status == 405) extra_header_lines = "Allow: GET, POST\r\n";
    append_text_response(out_, status, body, connection_header(), extra_header_lines);
    response_body_bytes_ = body.size() + 1;
    finish_request(status, reason);
}

void HttpConnection::respond(int status, std::string_view content_type, std::string_view body, std::string_view reason,
                             std::string_view extra_header_lines) {
    SCEPPROXY_INVARIANT(state_ == State::handling, "respond with no request in flight");
    SCEPPROXY_INVARIANT(!response_started_, "respond after begin_response");
    if (state_ != State::handling) return;
    append_response_head(out_, status, content_type, ResponseFraming::content_length, body.size(), connection_header(),
                         extra_header_lines);
    out_.append(body);
    response_body_bytes_ = body.size();
    finish_request(status, reason);
}

void HttpConnection::begin_response(int status, std::string_view content_type, std::optional<uint64_t> content_length) {
    SCEPPROXY_INVARIANT(state_ == State::handling, "begin_response with no request in flight");
    SCEPPROXY_INVARIANT(!response_started_, "a response begun twice");
    if (state_ != State::handling) return;
    response_framing_ = ResponseFraming::content_length;
    if (!content_length) {
        // Length unknown: chunk it and keep the connection; HTTP/1.0 clients get close-delimited.
        response_framing_ = http10_ ? ResponseFraming::until_close : ResponseFraming::chunked;
        if (http10_) keep_alive_ = false;
    }
    append_response_head(out_, status, content_type, response_framing_, content_length.value_or(0),
                         connection_header());
    response_started_ = true;
}

void HttpConnection::send_body(std::string_view data) {
    SCEPPROXY_INVARIANT(state_ == State::handling, "send_body with no request in flight");
    SCEPPROXY_INVARIANT(response_started_, "send_body with no response begun");
    if (state_ != State::handling || !response_started_) return;
    response_body_bytes_ += data.size();
    if (response_framing_ == ResponseFraming::chunked)
        append_chunk(out_, data);
    else
        out_.append(data);
    flush_output();  // stream as it arrives
}

void HttpConnection::end_response(int status, std::string_view reason) {
    SCEPPROXY_INVARIANT(state_ == State::handling, "end_response with no request in flight");
    // Without a head the client would get nothing, yet the request be logged as answered.
    SCEPPROXY_INVARIANT(response_started_, "end_response with no response begun");
    if (state_ != State::handling) return;
    if (response_framing_ == ResponseFraming::chunked) append_last_chunk(out_);
    finish_request(status, reason);
}

void HttpConnection::abort_response(int status, std::string_view reason) {
    SCEPPROXY_INVARIANT(state_ == State::handling, "abort_response with no request in flight");
    if (state_ != State::handling) return;
    log_request(status, reason);
    state_ = State::finishing;  // the handler already knows: no on_abort back to it
    close_now();
}

void HttpConnection::finish_request(int status, std::string_view reason) {
    log_request(status, reason);
    state_ = State::finishing;
    flush_output();
}

void HttpConnection::log_request(int status, std::string_view reason) {
    ++requests_;
    const double total_ms = request_start_ns_ ? milliseconds_since(request_start_ns_) : 0;
    host_.request_done(RequestOutcome{log_fields_.operation.empty() ? std::string_view("-") : log_fields_.operation,
                                      status, reason, total_ms / 1000});
    if (!host_.access_log_enabled()) return;
    AccessLogRecord record;
    record.listener = listener_name_;
    record.client = peer_text_;
    record.token_id = log_fields_.token_id;
    record.profile = log_fields_.profile;
    record.operation = log_fields_.operation;
    record.message_type = log_fields_.message_type;
    record.pki_status = log_fields_.pki_status;
    record.status = status;
    record.reason = reason;
    record.bytes_in = body_.size();
    record.bytes_out = response_body_bytes_;
    record.upstream_ms = log_fields_.upstream_ms;
    record.total_ms = total_ms;
    write_access_log(record);
}

void HttpConnection::flush_output() {
    while (!out_.empty() && !write_blocked_) {
        const iovec part{out_.data(), out_.size()};
        const IoResult r = transport_->write(&part, 1);
        if (r.status == IoStatus::ok) {
            out_.consume(r.bytes);
            continue;
        }
        if (r.status == IoStatus::would_block) {
            write_blocked_ = true;
            // Total, from the first blocked write: a client reading a byte now and then can't reset it.
            if (timer_purpose_ != TimerPurpose::write)
                arm_timer(TimerPurpose::write, host_.limits().send_timeout.count());
            return;
        }
        close_now();  // peer gone
        return;
    }
    // The client took what was waiting: a streamed answer's send deadline starts again at its next
    // block; a 100 Continue sent while the body arrives hands back to the body's deadline.
    if (out_.empty() && timer_purpose_ == TimerPurpose::write) {
        if (state_ == State::reading_body)
            arm_timer(TimerPurpose::body, std::max<int64_t>(0, (body_deadline_ns_ - monotonic_ns()) / 1'000'000));
        else
            disarm_timer();
    }
    if (out_.empty() && state_ == State::finishing) after_flush();
}

void HttpConnection::after_flush() {
    if (!keep_alive_) {
        begin_close(true);
        return;
    }
    reset_for_next_request();
    if (state_ != State::reading_head) return;
    if (read_pending_)
        read_input();
    else
        process_input();
}

void HttpConnection::reset_for_next_request() {
    // Drop this request's bytes; what follows is the next (pipelined) request.
    in_.consume(std::min(in_.size(), head_length_ + static_cast<size_t>(body_consumed_)));
    head_length_ = 0;
    head_parsed_size_ = 0;
    body_consumed_ = 0;
    body_ = {};
    response_body_bytes_ = 0;
    response_started_ = false;
    request_start_ns_ = 0;
    log_fields_ = RequestLogFields{};
    parser_.reset();
    state_ = State::reading_head;
    std::string().swap(decoded_body_);
    if (in_.empty()) {
        // Between requests an idle keep-alive connection holds no buffer: thousands of them must
        // stay small, and the next request's allocation costs less than a page per connection.
        release_buffers();
        out_.shrink_if_empty(0);
        if (close_after_response_) {
            close_now();
            return;
        }
        arm_timer(TimerPurpose::idle, host_.limits().idle_timeout.count());
    } else {
        settle_buffer_charge();  // the decoded body's storage
        arm_timer(TimerPurpose::header, host_.limits().header_timeout.count());
    }
}

// graceful: the answer is out; stop sending but keep reading (and discarding) briefly, so the
// kernel doesn't reset the connection over unread input and destroy the answer in flight.
void HttpConnection::begin_close(bool graceful) {
    if (!graceful) {
        close_now();
        return;
    }
    ::shutdown(transport_->fd(), SHUT_WR);
    state_ = State::lingering;
    release_buffers();  // discarded input needs none
    arm_timer(TimerPurpose::linger, linger_ms_);
    read_input();
}

void HttpConnection::close_now() {
    if (state_ == State::closed) return;
    if (state_ == State::handling) handler_->on_abort();
    state_ = State::closed;
    event_del(io_event_);
    disarm_timer();
    // Freed after this loop iteration; the budget has the bytes back at once.
    host_.credit_buffer(charged_);
    charged_ = 0;
    host_.connection_closed(this);
}

void HttpConnection::on_timer(int, short, void* arg) { static_cast<HttpConnection*>(arg)->handle_timer(); }

void HttpConnection::handle_timer() {
    // close_now() and disarm_timer() remove the event; arm_timer() always names a purpose.
    SCEPPROXY_INVARIANT(state_ != State::closed, "timer fired on a closed client connection");
    const TimerPurpose purpose = timer_purpose_;
    SCEPPROXY_INVARIANT(purpose != TimerPurpose::none, "client connection timer fired without a purpose");
    timer_purpose_ = TimerPurpose::none;
    switch (purpose) {
        case TimerPurpose::header:
            if (state_ != State::reading_head) return;
            // Never sent a byte of a request (since the last answer): nobody to answer.
            if (in_.empty()) return close_for_deadline("header_timeout");
            request_start_ns_ = monotonic_ns();
            answer_deadline("header_timeout");
            return;
        case TimerPurpose::body:
            if (state_ != State::reading_body) return;
            answer_deadline("body_timeout");
            return;
        case TimerPurpose::idle: return close_for_deadline("idle_timeout");
        case TimerPurpose::write:
            return close_for_deadline("send_timeout");  // the client doesn't take its answer: nothing more to say
        case TimerPurpose::linger:
        case TimerPurpose::none: close_now(); return;
    }
}

// 408 with the deadline's name as reason, then close after a short linger.
void HttpConnection::answer_deadline(std::string_view reason) {
    host_.deadline_expired(reason);
    linger_ms_ = kDeadlineLingerMs;
    state_ = State::handling;
    respond_text(408, reason, reason, true);
}

void HttpConnection::close_for_deadline(std::string_view reason) {
    host_.deadline_expired(reason);
    if (host_.access_log_enabled())
        write_connection_closed_log(listener_name_, peer_text_, reason, requests_, milliseconds_since(accepted_ns_));
    close_now();
}

void HttpConnection::arm_timer(TimerPurpose purpose, int64_t milliseconds) {
    timer_purpose_ = purpose;
    const timeval tv{static_cast<time_t>(milliseconds / 1000), static_cast<suseconds_t>((milliseconds % 1000) * 1000)};
    event_add(timer_event_, &tv);
}

void HttpConnection::disarm_timer() {
    timer_purpose_ = TimerPurpose::none;
    if (timer_event_) event_del(timer_event_);
}

}  // namespace scepproxy::proxy
