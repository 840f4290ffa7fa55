// ClientConnection: the device-facing request state machine (edge-triggered, one request in flight).
#include "proxy/client_connection.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <time.h>

#include <chrono>

#include "proxy/access_log.h"
#include "proxy/ca_answer_cache.h"
#include "proxy/log.h"
#include "proxy/upstream_pool.h"
#include "proxy/upstream_request.h"
#include "proxy/worker.h"
#include "token/enrollment_token.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kReadChunk = 16384;
constexpr int64_t kLingerMs = 2000;          // how long a closing connection keeps discarding input
constexpr size_t kMaxTokenText = 64;

int64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

http::HttpLimits limits_from(const conf::LimitsConfig& limits) {
    http::HttpLimits http_limits;
    http_limits.max_request_line_bytes = limits.max_request_line_bytes;
    http_limits.max_header_bytes = limits.max_header_bytes;
    http_limits.max_headers = limits.max_headers;
    http_limits.max_body_bytes = limits.max_body_bytes;
    return http_limits;
}

// The one answer for unknown, expired and revoked tokens: nothing tells them apart on the wire.
constexpr std::string_view kInvalidTokenBody = "invalid_token";

}  // namespace

ClientConnection::ClientConnection(Worker& worker, int fd, const SocketAddress& peer)
    : worker_(worker),
      transport_(fd),
      peer_text_(peer.to_string()),
      parser_(limits_from(worker.config().limits)) {}

ClientConnection::~ClientConnection() {
    if (upstream_) upstream_->abandon();
    if (awaiting_access_) worker_.store_session().cancel(*this);
    if (io_event_) event_free(io_event_);
    if (timer_event_) event_free(timer_event_);
}

void ClientConnection::start() {
    // Registered once for both directions, edge-triggered: no epoll_ctl per request.
    io_event_ = event_new(worker_.base(), transport_.fd(), EV_READ | EV_WRITE | EV_PERSIST | EV_ET,
                          &ClientConnection::on_io, this);
    timer_event_ = event_new(worker_.base(), -1, 0, &ClientConnection::on_timer, this);
    event_add(io_event_, nullptr);
    arm_timer(TimerPurpose::header, worker_.config().limits.header_timeout.count());
    read_input();
}

void ClientConnection::on_drain() {
    close_after_response_ = true;
    if (state_ == State::reading_head && in_.empty()) begin_close(false);
}

void ClientConnection::on_io(int, short what, void* arg) { static_cast<ClientConnection*>(arg)->handle_io(what); }

void ClientConnection::handle_io(short what) {
    if (state_ == State::closed) return;
    if (what & EV_WRITE) {
        write_blocked_ = false;
        if (!out_.empty()) flush_output();
        if (state_ == State::closed) return;
    }
    if (what & EV_READ) read_input();
}

void ClientConnection::read_input() {
    const bool busy = state_ == State::checking_access || state_ == State::forwarding || state_ == State::finishing;
    if (busy) {
        read_pending_ = true;  // picked up after the response (pipelining: one request at a time)
        return;
    }
    read_pending_ = false;
    const auto& limits = worker_.config().limits;
    // Upper bound on buffered input: a full head plus a full body plus a pipelined head.
    const size_t max_buffered = size_t{limits.max_header_bytes} * 2 + limits.max_body_bytes;
    for (;;) {
        if (state_ != State::lingering && in_.size() >= max_buffered) {
            read_pending_ = true;  // the parser rejects before this fills; never read without bound
            break;
        }
        char* space = in_.prepare(kReadChunk);
        const size_t room = state_ == State::lingering ? in_.free_space() : std::min(in_.free_space(), max_buffered - in_.size());
        const IoResult r = transport_.read(space, room);
        if (r.status == IoStatus::ok) {
            if (state_ == State::lingering) continue;  // discard: don't commit
            in_.commit(r.bytes);
            if (r.bytes < room) break;  // drained: a stream socket gives all it has
            continue;
        }
        if (r.status == IoStatus::would_block) break;
        // EOF or error: nothing more will come. A half-sent request is abandoned.
        close_now();
        return;
    }
    if (state_ == State::lingering) return;
    process_input();
}

void ClientConnection::process_input() {
    // Answers that complete inline call back in here for the next pipelined request:
    // the outer loop carries on instead of recursing once per request.
    if (processing_input_) return;
    processing_input_ = true;
    process_buffered_requests();
    processing_input_ = false;
}

void ClientConnection::process_buffered_requests() {
    while (state_ == State::reading_head || state_ == State::reading_body) {
        if (state_ == State::reading_head) {
            if (in_.empty()) return;
            if (!parse_head()) return;
        }
        if (state_ == State::reading_body && !read_body()) return;
        dispatch();
    }
}

// True when the head is complete (state moves on); false to wait for more bytes or after an error answer.
bool ClientConnection::parse_head() {
    if (timer_purpose_ != TimerPurpose::header) arm_timer(TimerPurpose::header, worker_.config().limits.header_timeout.count());
    const http::ParseStatus status = parser_.parse_head(in_.view());
    if (status == http::ParseStatus::need_more) return false;
    request_start_ns_ = monotonic_ns();
    if (status == http::ParseStatus::error) {
        const http::HttpError& error = parser_.error();
        respond_local(error.status, error.reason(), error.reason(), true);
        return false;
    }
    const http::HttpRequest& request = parser_.request();
    request_ = RequestInfo{};
    request_.method = request.method;
    request_.path_offset = static_cast<size_t>(request.path.data() - in_.data());
    request_.path_length = request.path.size();
    request_.query_offset = request.query.empty() ? 0 : static_cast<size_t>(request.query.data() - in_.data());
    request_.query_length = request.query.size();
    request_.head_length = request.head_length;
    request_.keep_alive = request.keep_alive;
    request_.http10 = request.version == http::HttpVersion::http_1_0;
    body_.clear();
    body_consumed_ = 0;

    if (!parser_.has_body()) {
        state_ = State::checking_access;  // dispatch() decides; no more input until answered
        disarm_timer();
        return true;
    }
    body_.reserve(request.content_length.value_or(worker_.config().limits.max_body_bytes));
    state_ = State::reading_body;
    arm_timer(TimerPurpose::body, worker_.config().limits.body_timeout.count());
    // The client waits for this before sending its body, unless the body is already here.
    if (request.expect_continue && in_.size() == request_.head_length) {
        out_.append("HTTP/1.1 100 Continue\r\n\r\n");
        flush_output();
    }
    return true;
}

// True when the whole body is buffered in body_.
bool ClientConnection::read_body() {
    const size_t offset = request_.head_length + body_consumed_;
    const http::RequestBodyProgress progress =
        parser_.read_body(std::string_view(in_.data() + offset, in_.size() - offset), body_);
    body_consumed_ += progress.consumed;
    if (progress.status == http::ParseStatus::error) {
        const http::HttpError& error = parser_.error();
        respond_local(error.status, error.reason(), error.reason(), true);
        return false;
    }
    if (progress.status == http::ParseStatus::need_more) return false;
    state_ = State::checking_access;
    disarm_timer();
    return true;
}

void ClientConnection::dispatch() {
    state_ = State::checking_access;
    const RouteResult routed = route_scep_request(request_path(), request_query());
    route_ = routed.route;
    if (routed.status == RouteStatus::not_scep_path) {
        respond_local(404, "not_found", "not_found");
        return;
    }
    if (request_.method != http::HttpMethod::get && request_.method != http::HttpMethod::post) {
        respond_local(405, "method_not_allowed", "method_not_allowed", false);
        return;
    }
    if (routed.status != RouteStatus::ok) {
        respond_local(400, to_string(routed.status), to_string(routed.status));
        return;
    }
    const auto token = route_.token_text.size() <= kMaxTokenText
                           ? token::EnrollmentToken::parse(route_.token_text)
                           : std::nullopt;
    if (!token) {
        respond_local(403, "token_malformed", kInvalidTokenBody);
        return;
    }
    const bool is_post = request_.method == http::HttpMethod::post;
    switch (route_.operation) {
        case ScepOperation::get_ca_cert:
        case ScepOperation::get_ca_caps:
            if (is_post) {
                respond_local(405, "method_not_allowed", "method_not_allowed");
                return;
            }
            break;
        case ScepOperation::pki_operation:
            if (is_post ? body_.empty() : (!route_.has_message || route_.message.empty())) {
                respond_local(400, "missing_message", "missing_message");
                return;
            }
            break;
        case ScepOperation::get_next_ca_cert:
        case ScepOperation::other:
            break;  // forwarded only if the upstream's GetCACaps lists it (checked once the token is)
    }
    const token::TokenHash hash = token->hash();
    token_id_ = hash.id();
    token::AccessQuery query;
    query.token_hash = hash;
    query.check_device = route_.operation == ScepOperation::pki_operation;
    query.now = unix_now();
    awaiting_access_ = true;
    worker_.store_session().check_access(query, *this);
}

void ClientConnection::on_access_decided(const token::AccessDecision& decision) {
    awaiting_access_ = false;
    if (state_ != State::checking_access) return;
    profile_name_ = decision.profile;
    switch (decision.verdict) {
        case token::AccessVerdict::allow:
            break;
        case token::AccessVerdict::token_unknown:
        case token::AccessVerdict::token_expired:
        case token::AccessVerdict::token_revoked:
            respond_local(403, token::to_string(decision.verdict), kInvalidTokenBody);
            return;
        case token::AccessVerdict::device_not_enrolled:
        case token::AccessVerdict::device_not_compliant:
            respond_local(403, token::to_string(decision.verdict), token::to_string(decision.verdict));
            return;
        case token::AccessVerdict::store_unavailable:
            LogLine(LogLevel::warn, "store_unavailable").field("detail", decision.message).emit();
            respond_local(503, "store_unavailable", "store_unavailable");
            return;
    }
    WorkerProfile* profile = worker_.find_profile(decision.profile);
    if (!profile) {
        // The token names a profile this configuration no longer has.
        LogLine(LogLevel::warn, "profile_not_configured").field("profile", decision.profile).emit();
        respond_local(403, "profile_unknown", kInvalidTokenBody);
        return;
    }
    forward(*profile);
}

void ClientConnection::forward(WorkerProfile& profile) {
    state_ = State::forwarding;
    profile_ = &profile;
    const int64_t now = monotonic_ns();
    const int64_t cache_ttl_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(profile.targets->profile->ca_cache_ttl).count();
    const ScepOperation op = route_.operation;
    if (op == ScepOperation::get_ca_cert || op == ScepOperation::get_ca_caps) {
        const std::string_view key = op == ScepOperation::get_ca_caps ? std::string_view() : route_.message;
        if (cache_ttl_ns > 0) {
            if (const CachedAnswer* hit = profile.ca_cache.find(to_string(op), key, now)) {
                respond_cached(*hit);
                return;
            }
            capture_for_cache_ = CaAnswerCache::cacheable(key, 0);
        }
    } else if (op != ScepOperation::pki_operation) {
        // Other operations only when the upstream says it supports them (GetNextCACert is a capability keyword).
        const CachedAnswer* caps = profile.ca_cache.find("GetCACaps", "", now);
        if (!caps) {
            probing_caps_ = true;  // ask GetCACaps first, then decide (on_upstream_complete)
            capture_for_cache_ = true;
        } else if (!caps_list_has(caps->body, route_.operation_text)) {
            respond_local(400, "operation_not_supported", "operation_not_supported");
            return;
        }
    }
    upstream_attempts_ = 0;
    upstream_start_ns_ = now;
    send_upstream();
}

// Tries upstreams until one accepts a connection; answers 502 if none does.
void ClientConnection::send_upstream() {
    while (!start_upstream_attempt()) {
        if (upstream_attempts_ >= profile_->pools.size()) {
            respond_local(502, "upstream_connect_failed", "upstream_unavailable");
            return;
        }
    }
}

// Picks the next upstream round-robin and sends. False if no connection could even be started.
bool ClientConnection::start_upstream_attempt() {
    WorkerProfile& profile = *profile_;
    upstream_pool_ = profile.pools[profile.next_upstream++ % profile.pools.size()].get();
    ++upstream_attempts_;
    upstream_ = upstream_pool_->acquire();
    if (!upstream_) return false;
    ByteBuffer request;
    const bool is_post = request_.method == http::HttpMethod::post && !probing_caps_;
    const std::string_view body(body_);
    ScepRoute caps_route;
    caps_route.operation = ScepOperation::get_ca_caps;
    caps_route.operation_text = "GetCACaps";
    build_upstream_request(request, *upstream_pool_->target().config, probing_caps_ ? caps_route : route_,
                           is_post ? &body : nullptr);
    upstream_status_ = 0;
    captured_.clear();
    upstream_->send(std::move(request), false, this);
    return true;
}

void ClientConnection::respond_cached(const CachedAnswer& answer) {
    append_response_head(out_, 200, answer.content_type, ResponseFraming::content_length, answer.body.size(),
                         connection_header());
    out_.append(answer.body);
    response_body_bytes_ = answer.body.size();
    finish_request(200, "cache_hit");
}

ConnectionHeader ClientConnection::connection_header() {
    if (close_after_response_ || worker_.draining()) request_.keep_alive = false;
    return !request_.keep_alive ? ConnectionHeader::close
           : request_.http10    ? ConnectionHeader::keep_alive
                                : ConnectionHeader::none;
}

void ClientConnection::on_upstream_head(const http::HttpResponse& head) {
    upstream_status_ = head.status;
    if (capture_for_cache_ && head.status == 200) captured_content_type_ = head.content_type;
    if (probing_caps_) return;  // our own question: nothing goes to the device
    ResponseFraming framing = ResponseFraming::content_length;
    const bool length_known = head.framing == http::BodyFraming::content_length || head.framing == http::BodyFraming::none;
    if (!length_known) {
        // Length unknown: frame it ourselves and keep the connection; HTTP/1.0 clients get close-delimited.
        framing = request_.http10 ? ResponseFraming::until_close : ResponseFraming::chunked;
        if (request_.http10) request_.keep_alive = false;
    }
    response_chunked_ = framing == ResponseFraming::chunked;
    const uint64_t length = head.framing == http::BodyFraming::content_length ? head.content_length.value_or(0) : 0;
    append_response_head(out_, head.status, head.content_type, framing, length, connection_header());
    response_head_sent_ = true;
}

void ClientConnection::on_upstream_body(std::string_view data) {
    if (capture_for_cache_ && upstream_status_ == 200) {
        if (captured_.size() + data.size() <= CaAnswerCache::kMaxBodyBytes)
            captured_.append(data);
        else
            capture_for_cache_ = false;  // too big to keep: still forwarded
    }
    if (probing_caps_) return;
    response_body_bytes_ += data.size();
    if (response_chunked_)
        append_chunk(out_, data);
    else
        out_.append(data);
    flush_output();  // stream as it arrives
}

void ClientConnection::on_upstream_complete() {
    UpstreamConnection* upstream = upstream_;
    upstream_ = nullptr;
    upstream_pool_->release(upstream);
    if (capture_for_cache_ && upstream_status_ == 200) {
        const bool caps = probing_caps_ || route_.operation == ScepOperation::get_ca_caps;
        CachedAnswer answer;
        answer.operation = caps ? "GetCACaps" : "GetCACert";
        answer.message = caps ? std::string() : std::string(route_.message);
        answer.content_type = captured_content_type_;
        answer.body = std::move(captured_);
        answer.expires_ns = monotonic_ns() +
            std::chrono::duration_cast<std::chrono::nanoseconds>(profile_->targets->profile->ca_cache_ttl).count();
        // A zero ttl still answers this request's capability question, then expires at once.
        profile_->ca_cache.store(std::move(answer));
    }
    capture_for_cache_ = false;
    if (probing_caps_) {
        probing_caps_ = false;
        const CachedAnswer* caps = profile_->ca_cache.find("GetCACaps", "", 0);
        if (upstream_status_ != 200 || !caps) {
            respond_local(502, "upstream_caps_unavailable", "upstream_error");
        } else if (!caps_list_has(caps->body, route_.operation_text)) {
            respond_local(400, "operation_not_supported", "operation_not_supported");
        } else {
            upstream_attempts_ = 0;
            send_upstream();
        }
        return;
    }
    upstream_ms_ = elapsed_ms(upstream_start_ns_);
    if (response_chunked_) append_last_chunk(out_);
    finish_request(upstream_status_, "forwarded");
}

void ClientConnection::on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) {
    upstream_ = nullptr;  // it closes itself
    LogLine(LogLevel::warn, "upstream_failed")
        .field("profile", profile_name_)
        .field("upstream", upstream_pool_->target().label)
        .field("failure", to_string(failure))
        .field("request_sent", request_bytes_sent ? "true" : "false")
        .emit();
    if (response_head_sent_) {
        // Part of the answer is already with the device: the only honest signal left is to close.
        upstream_ms_ = elapsed_ms(upstream_start_ns_);
        log_request(upstream_status_, to_string(failure));
        close_now();
        return;
    }
    // Nothing reached the upstream: safe to try the next one, even for a PKIOperation.
    // GetCACert/GetCACaps are idempotent and may be retried even after bytes went out.
    const bool idempotent = route_.operation != ScepOperation::pki_operation;
    const bool retriable = failure != UpstreamFailure::response_timeout && (!request_bytes_sent || idempotent);
    while (retriable && upstream_attempts_ < profile_->pools.size()) {
        if (start_upstream_attempt()) return;
    }
    upstream_ms_ = elapsed_ms(upstream_start_ns_);
    out_.clear();
    switch (failure) {
        case UpstreamFailure::response_timeout:
            respond_local(504, "upstream_timeout", "upstream_timeout");
            return;
        case UpstreamFailure::connect_failed:
        case UpstreamFailure::connect_timeout:
            respond_local(502, to_string(failure), "upstream_unavailable");
            return;
        default:
            respond_local(502, to_string(failure), "upstream_error");
            return;
    }
}

void ClientConnection::respond_local(int status, std::string_view reason, std::string_view body, bool close_after) {
    if (close_after) request_.keep_alive = false;
    const ConnectionHeader connection = connection_header();
    const std::string_view allow = status == 405 ? std::string_view("Allow: GET, POST") : std::string_view();
    append_text_response(out_, status, body, connection, allow);
    response_body_bytes_ = body.size() + 1;
    finish_request(status, reason);
}

void ClientConnection::finish_request(int status, std::string_view reason) {
    log_request(status, reason);
    state_ = State::finishing;
    flush_output();
}

void ClientConnection::log_request(int status, std::string_view reason) {
    if (worker_.config().log.access_log) {
        AccessLogRecord record;
        record.listener = worker_.listener_name();
        record.client = peer_text_;
        record.token_id = token_id_;
        record.profile = profile_name_;
        record.operation = route_.operation_text.empty() ? std::string_view() : to_string(route_.operation);
        record.status = status;
        record.reason = reason;
        record.bytes_in = body_.size();
        record.bytes_out = response_body_bytes_;
        record.upstream_ms = upstream_ms_;
        record.total_ms = request_start_ns_ ? elapsed_ms(request_start_ns_) : 0;
        write_access_log(record);
    }
}

void ClientConnection::flush_output() {
    while (!out_.empty() && !write_blocked_) {
        const iovec part{out_.data(), out_.size()};
        const IoResult r = transport_.write(&part, 1);
        if (r.status == IoStatus::ok) {
            out_.consume(r.bytes);
            continue;
        }
        if (r.status == IoStatus::would_block) {
            write_blocked_ = true;
            arm_timer(TimerPurpose::write, worker_.config().limits.idle_timeout.count());
            return;
        }
        close_now();  // peer gone
        return;
    }
    if (out_.empty() && state_ == State::finishing) after_flush();
}

void ClientConnection::after_flush() {
    if (!request_.keep_alive) {
        begin_close(true);
        return;
    }
    reset_for_next_request();
    if (read_pending_)
        read_input();
    else
        process_input();
}

void ClientConnection::reset_for_next_request() {
    if (state_ == State::finishing) {
        // Drop this request's bytes; what follows is the next (pipelined) request.
        in_.consume(std::min(in_.size(), request_.head_length + static_cast<size_t>(body_consumed_)));
    }
    request_ = RequestInfo{};
    route_ = ScepRoute{};
    token_id_.clear();
    profile_name_.clear();
    body_.clear();
    body_consumed_ = 0;
    response_body_bytes_ = 0;
    upstream_ms_ = -1;
    request_start_ns_ = 0;
    profile_ = nullptr;
    upstream_pool_ = nullptr;
    response_chunked_ = false;
    response_head_sent_ = false;
    probing_caps_ = false;
    capture_for_cache_ = false;
    captured_.clear();
    parser_.reset();
    state_ = State::reading_head;
    if (in_.empty()) {
        in_.shrink_if_empty(65536);
        if (close_after_response_) {
            begin_close(false);
            return;
        }
        arm_timer(TimerPurpose::idle, worker_.config().limits.idle_timeout.count());
    } else {
        arm_timer(TimerPurpose::header, worker_.config().limits.header_timeout.count());
    }
}

// graceful: the answer is out; stop sending, keep reading (and discarding) briefly so the
// kernel doesn't reset the connection over unread input and destroy the answer in flight.
void ClientConnection::begin_close(bool graceful) {
    if (!graceful) {
        close_now();
        return;
    }
    ::shutdown(transport_.fd(), SHUT_WR);
    state_ = State::lingering;
    in_.clear();
    arm_timer(TimerPurpose::linger, kLingerMs);
    read_input();
}

void ClientConnection::close_now() {
    if (state_ == State::closed) return;
    if (state_ == State::checking_access && awaiting_access_) {
        worker_.store_session().cancel(*this);
        awaiting_access_ = false;
    }
    if (upstream_) {
        upstream_->abandon();
        upstream_ = nullptr;
    }
    state_ = State::closed;
    event_del(io_event_);
    disarm_timer();
    worker_.connection_closed(this);
}

void ClientConnection::on_timer(int, short, void* arg) { static_cast<ClientConnection*>(arg)->handle_timer(); }

void ClientConnection::handle_timer() {
    const TimerPurpose purpose = timer_purpose_;
    timer_purpose_ = TimerPurpose::none;
    switch (purpose) {
        case TimerPurpose::header:
            if (state_ == State::reading_head && in_.empty()) {
                close_now();  // never sent anything: nobody to answer
                return;
            }
            if (state_ == State::reading_head) {
                request_start_ns_ = monotonic_ns();
                respond_local(408, "header_timeout", "header_timeout", true);
            }
            return;
        case TimerPurpose::body:
            if (state_ == State::reading_body) respond_local(408, "body_timeout", "body_timeout", true);
            return;
        case TimerPurpose::idle:
        case TimerPurpose::write:
        case TimerPurpose::linger:
        case TimerPurpose::none:
            close_now();
            return;
    }
}

void ClientConnection::arm_timer(TimerPurpose purpose, int64_t milliseconds) {
    timer_purpose_ = purpose;
    const timeval tv{static_cast<time_t>(milliseconds / 1000), static_cast<suseconds_t>((milliseconds % 1000) * 1000)};
    event_add(timer_event_, &tv);
}

void ClientConnection::disarm_timer() {
    timer_purpose_ = TimerPurpose::none;
    if (timer_event_) event_del(timer_event_);
}

double ClientConnection::elapsed_ms(int64_t since_ns) const {
    return static_cast<double>(monotonic_ns() - since_ns) / 1e6;
}

}  // namespace scepproxy::proxy
