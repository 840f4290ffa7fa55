// ScepRequestHandler: SCEP routing, the enrollment-store check, the CA answer cache and upstream forwarding.
#include "proxy/scep_request_handler.h"

#include <chrono>

#include "proxy/ca_answer_cache.h"
#include "proxy/clock.h"
#include "proxy/http_connection.h"
#include "proxy/log.h"
#include "proxy/upstream_pool.h"
#include "proxy/upstream_request.h"
#include "proxy/worker.h"
#include "token/enrollment_token.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kMaxTokenText = 64;

// The one answer for unknown, expired and revoked tokens: nothing tells them apart on the wire.
constexpr std::string_view kInvalidTokenBody = "invalid_token";

UpstreamOutcome outcome_of(UpstreamFailure failure) {
    switch (failure) {
        case UpstreamFailure::connect_failed: return UpstreamOutcome::connect_failed;
        case UpstreamFailure::connect_timeout: return UpstreamOutcome::connect_timeout;
        case UpstreamFailure::response_timeout: return UpstreamOutcome::timeout;
        case UpstreamFailure::closed_early: return UpstreamOutcome::closed;
        case UpstreamFailure::protocol_error: return UpstreamOutcome::protocol_error;
        case UpstreamFailure::body_too_large: return UpstreamOutcome::body_too_large;
    }
    return UpstreamOutcome::protocol_error;
}

int64_t ttl_ns(conf::Duration ttl) { return std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count(); }

}  // namespace

ScepRequestHandler::~ScepRequestHandler() { on_abort(); }

void ScepRequestHandler::on_abort() {
    if (awaiting_access_) {
        worker_.store_session().cancel(*this);
        awaiting_access_ = false;
    }
    if (upstream_) {
        upstream_->abandon();  // half-done: closed, never reused
        upstream_ = nullptr;
    }
    release_request();
}

// Forgets the request before answering it: an answer may complete at once and let the
// connection hand this handler its next (pipelined) request from inside the call.
HttpConnection* ScepRequestHandler::take_connection() {
    HttpConnection* connection = connection_;
    release_request();
    return connection;
}

void ScepRequestHandler::release_request() {
    connection_ = nullptr;
    profile_ = nullptr;
    upstream_pool_ = nullptr;
    probing_caps_ = false;
    capture_for_cache_ = false;
    captured_.clear();
}

void ScepRequestHandler::on_request(HttpConnection& connection, const IncomingRequest& request) {
    connection_ = &connection;
    is_post_ = request.head.method == http::HttpMethod::post;
    body_ = request.body;
    const RouteResult routed = route_scep_request(request.head.path, request.head.query);
    route_ = routed.route;
    if (routed.status == RouteStatus::not_scep_path) {
        take_connection()->respond_text(404, "not_found", "not_found");
        return;
    }
    if (request.head.method != http::HttpMethod::get && !is_post_) {
        take_connection()->respond_text(405, "method_not_allowed", "method_not_allowed");
        return;
    }
    if (routed.status != RouteStatus::ok) {
        take_connection()->respond_text(400, to_string(routed.status), to_string(routed.status));
        return;
    }
    connection.log_fields().operation = to_string(route_.operation);
    const auto token = route_.token_text.size() <= kMaxTokenText ? token::EnrollmentToken::parse(route_.token_text)
                                                                 : std::nullopt;
    if (!token) {
        take_connection()->respond_text(403, "token_malformed", kInvalidTokenBody);
        return;
    }
    switch (route_.operation) {
        case ScepOperation::get_ca_cert:
        case ScepOperation::get_ca_caps:
            if (is_post_) {
                take_connection()->respond_text(405, "method_not_allowed", "method_not_allowed");
                return;
            }
            break;
        case ScepOperation::pki_operation:
            if (is_post_ ? body_.empty() : (!route_.has_message || route_.message.empty())) {
                take_connection()->respond_text(400, "missing_message", "missing_message");
                return;
            }
            break;
        case ScepOperation::get_next_ca_cert:
        case ScepOperation::other:
            break;  // forwarded only if the upstream's GetCACaps lists it (checked once the token is)
    }
    const token::TokenHash hash = token->hash();
    connection.log_fields().token_id = hash.id();
    token::AccessQuery query;
    query.token_hash = hash;
    query.check_device = route_.operation == ScepOperation::pki_operation;
    query.now = unix_now();
    awaiting_access_ = true;
    worker_.store_session().check_access(query, *this);
}

void ScepRequestHandler::on_access_decided(const token::AccessDecision& decision) {
    awaiting_access_ = false;
    if (!connection_) return;
    HttpConnection& connection = *connection_;
    connection.log_fields().profile = decision.profile;
    switch (decision.verdict) {
        case token::AccessVerdict::allow:
            break;
        case token::AccessVerdict::token_unknown:
        case token::AccessVerdict::token_expired:
        case token::AccessVerdict::token_revoked:
            take_connection()->respond_text(403, token::to_string(decision.verdict), kInvalidTokenBody);
            return;
        case token::AccessVerdict::device_not_enrolled:
        case token::AccessVerdict::device_not_compliant:
            take_connection()->respond_text(403, token::to_string(decision.verdict), token::to_string(decision.verdict));
            return;
        case token::AccessVerdict::store_unavailable:
            LogLine(LogLevel::warn, "store_unavailable").field("detail", decision.message).emit();
            take_connection()->respond_text(503, "store_unavailable", "store_unavailable");
            return;
    }
    WorkerProfile* profile = worker_.find_profile(decision.profile);
    if (!profile) {
        // The token names a profile this configuration no longer has.
        LogLine(LogLevel::warn, "profile_not_configured").field("profile", decision.profile).emit();
        take_connection()->respond_text(403, "profile_unknown", kInvalidTokenBody);
        return;
    }
    forward(*profile);
}

void ScepRequestHandler::forward(WorkerProfile& profile) {
    profile_ = &profile;
    const int64_t now = monotonic_ns();
    const ScepOperation op = route_.operation;
    if (op == ScepOperation::get_ca_cert || op == ScepOperation::get_ca_caps) {
        const std::string_view key = op == ScepOperation::get_ca_caps ? std::string_view() : route_.message;
        if (profile.targets->profile->ca_cache_ttl.count() > 0) {
            const CachedAnswer* hit = profile.ca_cache.find(to_string(op), key, now);
            worker_.metrics().count_ca_cache(hit != nullptr);
            if (hit) {
                take_connection()->respond(200, hit->content_type, hit->body, "cache_hit");
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
            take_connection()->respond_text(400, "operation_not_supported", "operation_not_supported");
            return;
        }
    }
    upstream_attempts_ = 0;
    upstream_start_ns_ = now;
    send_upstream();
}

// Tries upstreams until one accepts a connection; answers 502 if none does.
void ScepRequestHandler::send_upstream() {
    while (!start_upstream_attempt()) {
        if (upstream_attempts_ >= profile_->pools.size()) {
            take_connection()->respond_text(502, "upstream_connect_failed", "upstream_unavailable");
            return;
        }
    }
}

// Picks the next upstream round-robin and sends. False if no connection could even be started.
bool ScepRequestHandler::start_upstream_attempt() {
    WorkerProfile& profile = *profile_;
    upstream_index_ = profile.next_upstream++ % profile.pools.size();
    upstream_pool_ = profile.pools[upstream_index_].get();
    ++upstream_attempts_;
    upstream_ = upstream_pool_->acquire();
    if (!upstream_) return false;
    ScepRoute caps_route;
    caps_route.operation = ScepOperation::get_ca_caps;
    caps_route.operation_text = "GetCACaps";
    const bool post = is_post_ && !probing_caps_;
    ByteBuffer request;
    build_upstream_request(request, *upstream_pool_->target().config, probing_caps_ ? caps_route : route_,
                           post ? &body_ : nullptr);
    upstream_status_ = 0;
    captured_.clear();
    upstream_->send(std::move(request), false, this);
    return true;
}

void ScepRequestHandler::on_upstream_head(const http::HttpResponse& head) {
    upstream_status_ = head.status;
    if (capture_for_cache_ && head.status == 200) captured_content_type_ = head.content_type;
    if (probing_caps_ || !connection_) return;  // our own question: nothing goes to the device
    const bool length_known = head.framing == http::BodyFraming::content_length || head.framing == http::BodyFraming::none;
    std::optional<uint64_t> length;
    if (length_known) length = head.framing == http::BodyFraming::content_length ? head.content_length.value_or(0) : 0;
    connection_->begin_response(head.status, head.content_type, length);
}

void ScepRequestHandler::on_upstream_body(std::string_view data) {
    if (capture_for_cache_ && upstream_status_ == 200) {
        if (captured_.size() + data.size() <= CaAnswerCache::kMaxBodyBytes)
            captured_.append(data);
        else
            capture_for_cache_ = false;  // too big to keep: still forwarded
    }
    if (probing_caps_ || !connection_) return;
    connection_->send_body(data);
}

void ScepRequestHandler::store_captured_answer() {
    const bool caps = probing_caps_ || route_.operation == ScepOperation::get_ca_caps;
    CachedAnswer answer;
    answer.operation = caps ? "GetCACaps" : "GetCACert";
    answer.message = caps ? std::string() : std::string(route_.message);
    answer.content_type = captured_content_type_;
    answer.body = std::move(captured_);
    // With a zero ttl an answer still settles this request's capability question, then is stale at once.
    answer.expires_ns = monotonic_ns() + ttl_ns(profile_->targets->profile->ca_cache_ttl);
    profile_->ca_cache.store(std::move(answer));
}

void ScepRequestHandler::record_upstream(UpstreamOutcome outcome) {
    const ProfileMetrics& metrics = *profile_->metrics;
    metrics.upstream_requests[static_cast<size_t>(outcome)]->Increment();
    if (outcome == UpstreamOutcome::ok) metrics.upstream_duration->Observe(milliseconds_since(upstream_start_ns_) / 1000);
    // Passive health: the last exchange decides (active checks come with upstream failover).
    const bool reachable = outcome != UpstreamOutcome::connect_failed && outcome != UpstreamOutcome::connect_timeout;
    metrics.upstream_up[upstream_index_]->Set(reachable ? 1 : 0);
}

void ScepRequestHandler::on_upstream_complete() {
    UpstreamConnection* upstream = upstream_;
    upstream_ = nullptr;
    upstream_pool_->release(upstream);
    record_upstream(UpstreamOutcome::ok);
    if (!connection_) return;
    if (capture_for_cache_ && upstream_status_ == 200) store_captured_answer();
    capture_for_cache_ = false;
    if (probing_caps_) {
        probing_caps_ = false;
        const CachedAnswer* caps = profile_->ca_cache.find("GetCACaps", "", 0);
        if (upstream_status_ != 200 || !caps) {
            take_connection()->respond_text(502, "upstream_caps_unavailable", "upstream_error");
            return;
        }
        if (!caps_list_has(caps->body, route_.operation_text)) {
            take_connection()->respond_text(400, "operation_not_supported", "operation_not_supported");
            return;
        }
        upstream_attempts_ = 0;
        send_upstream();
        return;
    }
    connection_->log_fields().upstream_ms = milliseconds_since(upstream_start_ns_);
    take_connection()->end_response(upstream_status_, "forwarded");
}

void ScepRequestHandler::on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) {
    upstream_ = nullptr;  // it closed itself
    record_upstream(outcome_of(failure));
    if (!connection_) return;
    HttpConnection& connection = *connection_;
    LogLine(LogLevel::warn, "upstream_failed")
        .field("profile", profile_->targets->profile->name)
        .field("upstream", upstream_pool_->target().label)
        .field("failure", to_string(failure))
        .field("request_sent", request_bytes_sent ? "true" : "false")
        .emit();
    connection.log_fields().upstream_ms = milliseconds_since(upstream_start_ns_);
    if (connection.response_started()) {
        // Part of the answer is already with the device: the only honest signal left is to close.
        take_connection()->abort_response(upstream_status_, to_string(failure));
        return;
    }
    // Nothing reached the upstream: safe to try the next one, even for a PKIOperation.
    // GetCACert/GetCACaps are idempotent and may be retried even after bytes went out;
    // a PKIOperation never is (its challenge is single-use).
    const bool idempotent = route_.operation != ScepOperation::pki_operation || probing_caps_;
    const bool retriable = failure != UpstreamFailure::response_timeout && (!request_bytes_sent || idempotent);
    while (retriable && upstream_attempts_ < profile_->pools.size()) {
        if (start_upstream_attempt()) return;
    }
    release_request();
    switch (failure) {
        case UpstreamFailure::response_timeout:
            connection.respond_text(504, "upstream_timeout", "upstream_timeout");
            return;
        case UpstreamFailure::connect_failed:
        case UpstreamFailure::connect_timeout:
            connection.respond_text(502, to_string(failure), "upstream_unavailable");
            return;
        default:
            connection.respond_text(502, to_string(failure), "upstream_error");
            return;
    }
}

}  // namespace scepproxy::proxy
