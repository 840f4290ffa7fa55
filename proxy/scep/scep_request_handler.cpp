// ScepRequestHandler: SCEP routing, the enrollment-store check, the CA answer cache and upstream forwarding.
#include "proxy/scep/scep_request_handler.h"

#include <chrono>

#include "base/clock.h"
#include "base/invariant.h"
#include "pkcs7/envelope_recipients.h"
#include "pkcs7/scep_message_encoding.h"
#include "proxy/net/http_connection.h"
#include "proxy/scep/ca_answer_cache.h"
#include "proxy/telemetry/log.h"
#include "proxy/upstream/upstream_request.h"
#include "token/enrollment_token.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kMaxTokenText = 64;
// A request goes to at most two upstreams: one retry, so a failing CA costs a device at most twice.
constexpr unsigned kMaxUpstreamAttempts = 2;

// 503 ra_unavailable: an RA's upstreams come back within health checks' rise; a minute is patient enough.
constexpr std::string_view kRaUnavailableRetryAfter = "Retry-After: 60\r\n";

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
        case UpstreamFailure::tls_error: return UpstreamOutcome::tls_error;
    }
    return UpstreamOutcome::protocol_error;
}

int64_t ttl_ns(conf::Duration ttl) { return std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count(); }

// The moves the machine makes; any phase may end in idle (answered or aborted).
bool transition_allowed(ScepPhase from, ScepPhase to) {
    if (to == ScepPhase::idle) return true;
    switch (from) {
        case ScepPhase::idle: return to == ScepPhase::awaiting_access;
        case ScepPhase::awaiting_access:
            return to == ScepPhase::awaiting_bind || to == ScepPhase::awaiting_ca_fetch ||
                   to == ScepPhase::probing_caps || to == ScepPhase::forwarding;
        case ScepPhase::awaiting_bind: return to == ScepPhase::probing_caps || to == ScepPhase::forwarding;
        case ScepPhase::awaiting_ca_fetch: return to == ScepPhase::forwarding;
        case ScepPhase::probing_caps: return to == ScepPhase::forwarding;
        case ScepPhase::forwarding: return false;
    }
    return false;
}

}  // namespace

const char* to_string(ScepPhase phase) {
    switch (phase) {
        case ScepPhase::idle: return "idle";
        case ScepPhase::awaiting_access: return "awaiting_access";
        case ScepPhase::awaiting_bind: return "awaiting_bind";
        case ScepPhase::awaiting_ca_fetch: return "awaiting_ca_fetch";
        case ScepPhase::probing_caps: return "probing_caps";
        case ScepPhase::forwarding: return "forwarding";
    }
    return "unknown";
}

ScepRequestHandler::~ScepRequestHandler() {
    // Destroyed with its worker: nobody is told anything.
    if (store_calls_owed_ > 0) host_.store_session().cancel(*this);
    store_calls_owed_ = 0;
    if (try_.in_flight()) try_.abandon();
    release_request(false);
}

void ScepRequestHandler::on_abort() {
    // Every store call still owed is cancelled, however many: none may reach this handler later.
    if (store_calls_owed_ > 0) host_.store_session().cancel(*this);
    store_calls_owed_ = 0;
    if (try_.in_flight()) try_.abandon();  // half-done: closed, never reused
    release_request(true);
}

void ScepRequestHandler::enter(ScepPhase next) {
    SCEPPROXY_INVARIANT(transition_allowed(phase_, next), "scep handler: phase move not in the machine");
    phase_ = next;
}

// Forgets the request before answering it: an answer may complete at once and let the
// connection hand this handler its next (pipelined) request from inside the call.
ResponseChannel* ScepRequestHandler::take_connection() {
    ResponseChannel* connection = connection_;
    release_request(true);
    return connection;
}

// Frees what the request held, not just empties it: the connection may now sit idle for long.
void ScepRequestHandler::release_request(bool tell_waiters) {
    const ScepPhase was = phase_;
    enter(ScepPhase::idle);
    connection_ = nullptr;
    try_.reset();
    std::vector<uint8_t>().swap(decoded_message_);
    std::string().swap(upstream_message_param_);
    cert_rep_status_.reset();
    pki_der_ = {};
    routing_.reset();
    ScepProfile* profile = profile_;
    profile_ = nullptr;
    // Freed on return, after the waiters were told: it may be a retired generation's last hold on
    // its pools and coalescer; this handler may be running a new request by then.
    const std::shared_ptr<ScepGeneration> generation = std::move(generation_);
    // Last: telling the waiters lets other requests run from here.
    if (CaFetchCoalescer* led = leading_ca_fetch_) {
        leading_ca_fetch_ = nullptr;
        led->forget(this, tell_waiters);
    } else if (was == ScepPhase::awaiting_ca_fetch) {
        profile->ca_fetches.forget(this, tell_waiters);
    }
}

// Over the request rate of `limiter` for `key`: 429 with Retry-After (the connection stays usable).
bool ScepRequestHandler::refuse_if_rate_limited(RateLimiter& limiter, const LimitKey& key, std::string_view reason) {
    if (!limiter.enabled()) return false;
    const RateLimiter::Decision decision = limiter.take(key, monotonic_ns());
    if (decision.allowed) return false;
    const std::string retry_after =
        "Retry-After: " + std::to_string(retry_after_seconds(decision.retry_after_ns)) + "\r\n";
    take_connection()->respond_text(429, reason, reason, false, retry_after);
    return true;
}

void ScepRequestHandler::on_request(HttpConnection& connection, const IncomingRequest& request) {
    handle(connection, request);
}

void ScepRequestHandler::handle(ResponseChannel& connection, const IncomingRequest& request) {
    SCEPPROXY_INVARIANT(phase_ == ScepPhase::idle && store_calls_owed_ == 0,
                        "scep handler: a request arrived while one is in flight");
    connection_ = &connection;
    generation_ = host_.scep_generation();
    if (refuse_if_rate_limited(host_.client_request_limiter(), client_, "client_rate_limited")) return;
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
    // Before the store: a token hammered by a leak or a loop costs the store nothing.
    if (refuse_if_rate_limited(host_.token_request_limiter(), token_limit_key(hash), "token_rate_limited")) return;
    check_access(hash);
}

void ScepRequestHandler::check_access(const token::TokenHash& hash) {
    token::AccessQuery query;
    query.token_hash = hash;
    query.check_device = route_.operation == ScepOperation::pki_operation;
    query.now = unix_now();
    token_hash_ = hash;
    enter(ScepPhase::awaiting_access);
    ++store_calls_owed_;
    host_.store_session().check_access(query, *this);  // may answer before it returns
}

void ScepRequestHandler::on_access_decided(const token::AccessDecision& decision) {
    SCEPPROXY_INVARIANT(store_calls_owed_ > 0 && phase_ == ScepPhase::awaiting_access,
                        "scep handler: an access decision nobody asked for");
    if (store_calls_owed_ > 0) --store_calls_owed_;
    if (!connection_ || phase_ != ScepPhase::awaiting_access) return;
    ResponseChannel& connection = *connection_;
    connection.log_fields().profile = decision.profile;
    switch (decision.verdict) {
        case token::AccessVerdict::allow: break;
        case token::AccessVerdict::token_unknown:
        case token::AccessVerdict::token_expired:
        case token::AccessVerdict::token_revoked:
            take_connection()->respond_text(403, token::to_string(decision.verdict), kInvalidTokenBody);
            return;
        case token::AccessVerdict::device_not_enrolled:
        case token::AccessVerdict::device_not_compliant:
            take_connection()->respond_text(403, token::to_string(decision.verdict),
                                            token::to_string(decision.verdict));
            return;
        case token::AccessVerdict::store_unavailable:
            LogLine(LogLevel::warn, "store_unavailable").field("detail", decision.message).emit();
            take_connection()->respond_text(503, "store_unavailable", "store_unavailable");
            return;
    }
    ScepProfile* profile = generation_->find_profile(decision.profile);
    if (!profile) {
        // The token names a profile this configuration no longer has.
        LogLine(LogLevel::warn, "profile_not_configured").field("profile", decision.profile).emit();
        take_connection()->respond_text(403, "profile_unknown", kInvalidTokenBody);
        return;
    }
    forward(*profile);
}

void ScepRequestHandler::forward(ScepProfile& profile) {
    profile_ = &profile;
    upstream_attempts_ = 0;
    upstreams_tried_ = 0;
    upstreams_excluded_ = 0;
    preferred_upstream_.reset();
    ca_group_key_ = 0;
    upstream_start_ns_ = monotonic_ns();
    const ScepOperation op = route_.operation;
    upstream_operation_ = route_.operation_text;
    upstream_message_ = route_.has_message ? route_.message : std::string_view();
    upstream_post_ = is_post_;
    if (op == ScepOperation::get_ca_cert || op == ScepOperation::get_ca_caps) {
        answer_ca_request(true);
        return;
    }
    if (op == ScepOperation::pki_operation) {
        if (!inspect_pki_message() || !route_by_recipient()) return;
        // One token, one certificate: bind the token to this transaction first (continues in on_transaction_bound).
        token::BindQuery query;
        query.token_hash = token_hash_;
        query.transaction_id = request_message_.transaction_id;
        query.may_bind = request_message_.message_type == pkcs7::MessageType::pkcs_req ||
                         request_message_.message_type == pkcs7::MessageType::renewal_req;
        query.now = unix_now();
        enter(ScepPhase::awaiting_bind);
        ++store_calls_owed_;
        host_.store_session().bind_transaction(query, *this);  // may answer before it returns
        return;
    }
    forward_by_caps();
}

// GetCACert/GetCACaps: from the cache; else after another request's fetch of the same answer
// (single-flight); else from the upstream. first_look: counted as a cache hit or miss.
void ScepRequestHandler::answer_ca_request(bool first_look) {
    ScepProfile& profile = *profile_;
    const ScepOperation op = route_.operation;
    const std::string_view key = op == ScepOperation::get_ca_caps ? std::string_view() : route_.message;
    if (first_look && op == ScepOperation::get_ca_cert) choose_ca_group();
    AnswerUse use = AnswerUse::stream;
    if (profile.targets->profile->ca_cache_ttl.count() > 0) {
        const CachedAnswer* hit = profile.ca_cache.find(to_string(op), key, monotonic_ns(), ca_group_key_);
        if (first_look) host_.metrics().count_ca_cache(hit != nullptr);
        if (hit) {
            remember_shown_group(hit->group);
            const std::string body = shown_to_device(op, hit->body);
            take_connection()->respond(200, hit->content_type, body, "cache_hit");
            return;
        }
        if (CaAnswerCache::cacheable(key, 0)) {
            // Only a first look waits: after a fetch that brought nothing to the cache (the upstream
            // failed), the waiters ask it at once, not one after another.
            if (first_look) {
                if (profile.ca_fetches.wait_or_lead(to_string(op), key, this, ca_group_key_)) {
                    enter(ScepPhase::awaiting_ca_fetch);  // continues in on_ca_fetch_done
                    return;
                }
                leading_ca_fetch_ = &profile.ca_fetches;
            }
            use = AnswerUse::stream_and_cache;
        }
    }
    // A GetCACaps answer may be edited before the device sees it: hold it instead of streaming it.
    if (op == ScepOperation::get_ca_caps && profile.targets->profile->advertise_post_pki_operation)
        use = AnswerUse::hold;
    send_upstream(ScepPhase::forwarding, use);
}

void ScepRequestHandler::on_ca_fetch_done() {
    SCEPPROXY_INVARIANT(phase_ == ScepPhase::awaiting_ca_fetch,
                        "scep handler: a CA fetch ended that it didn't wait for");
    if (connection_ && phase_ == ScepPhase::awaiting_ca_fetch) answer_ca_request(false);
}

void ScepRequestHandler::on_transaction_bound(const token::BindDecision& decision) {
    SCEPPROXY_INVARIANT(store_calls_owed_ > 0 && phase_ == ScepPhase::awaiting_bind,
                        "scep handler: a binding nobody asked for");
    if (store_calls_owed_ > 0) --store_calls_owed_;
    if (!connection_ || phase_ != ScepPhase::awaiting_bind) return;
    switch (decision.verdict) {
        case token::BindVerdict::bound:
            check_binding_signature();
            forward_by_caps();
            return;
        case token::BindVerdict::already_bound: forward_by_caps(); return;
        case token::BindVerdict::not_bound:
        case token::BindVerdict::transaction_mismatch:
            // Another enrollment on this token, or a CertPoll for a transaction that never started here.
            take_connection()->respond_text(403, "transaction_mismatch", "transaction_mismatch");
            return;
        case token::BindVerdict::token_consumed:
        case token::BindVerdict::token_unknown:
        case token::BindVerdict::token_expired:
        case token::BindVerdict::token_revoked:
            take_connection()->respond_text(403, token::to_string(decision.verdict), kInvalidTokenBody);
            return;
        case token::BindVerdict::transaction_invalid:
            take_connection()->respond_text(400, "malformed_message", "malformed_message");
            return;
        case token::BindVerdict::store_unavailable:
            LogLine(LogLevel::warn, "store_unavailable").field("detail", decision.message).emit();
            take_connection()->respond_text(503, "store_unavailable", "store_unavailable");
            return;
    }
}

// SUCCESS consumes the token, FAILURE frees it for another try; PENDING (or no CertRep) keeps it
// as it is.
std::optional<token::FinishQuery> ScepRequestHandler::transaction_end() const {
    if (!cert_rep_status_ || *cert_rep_status_ == pkcs7::PkiStatus::pending) return std::nullopt;
    token::FinishQuery query;
    query.token_hash = token_hash_;
    query.transaction_id = request_message_.transaction_id;
    const bool release = *cert_rep_status_ == pkcs7::PkiStatus::failure &&
                         profile_->targets->profile->release_on_failure;
    query.end = release ? token::TransactionEnd::release : token::TransactionEnd::consume;
    query.now = unix_now();
    return query;
}

// Reads the pkiMessage's clear-text attributes (never decrypting). False after answering 400.
bool ScepRequestHandler::inspect_pki_message() {
    std::string_view der = body_;
    if (!is_post_) {
        auto decoded = pkcs7::decode_message_parameter(route_.message, host_.limits().max_body_bytes);
        if (!decoded.ok()) {
            LogLine(LogLevel::info, "malformed_message").field("detail", pkcs7::to_string(decoded.error)).emit();
            take_connection()->respond_text(400, "malformed_message", "malformed_message");
            return false;
        }
        decoded_message_ = std::move(*decoded.value);
        der = std::string_view(reinterpret_cast<const char*>(decoded_message_.data()), decoded_message_.size());
    }
    // Only the signed attributes: decoding the certificates costs more than the rest of the request.
    const auto failure = pkcs7::read_pki_message_attributes_into(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(der.data()), der.size()), {}, request_message_);
    if (failure) {
        LogLine(LogLevel::info, "malformed_message")
            .field("error", pkcs7::to_string(failure->error))
            .field("detail", failure->detail)
            .emit();
        take_connection()->respond_text(400, "malformed_message", "malformed_message");
        return false;
    }
    pki_der_ = der;
    connection_->log_fields().message_type = pkcs7::to_string(request_message_.message_type);
    if (!message_type_allowed(request_message_.message_type)) {
        take_connection()->respond_text(400, "message_type_not_allowed", "message_type_not_allowed");
        return false;
    }
    return true;
}

// Upstreams with different certificates: the request goes only to those holding the certificate
// its envelope is encrypted to (read in the clear; the envelope is never opened). One that no
// upstream holds is refused here, never forwarded. False after answering.
bool ScepRequestHandler::route_by_recipient() {
    routing_ = profile_->routing_groups();
    if (!routing_) return true;
    const auto recipients = pkcs7::read_envelope_recipients(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pki_der_.data()), pki_der_.size()));
    if (!recipients.ok()) {
        LogLine(LogLevel::info, "malformed_message")
            .field("error", pkcs7::to_string(recipients.error))
            .field("detail", recipients.detail)
            .emit();
        take_connection()->respond_text(400, "malformed_message", "malformed_message");
        return false;
    }
    uint32_t holders = 0;
    bool ambiguous = false;
    for (const pkcs7::RecipientId& recipient : recipients.value->key_transport) {
        const UpstreamCertificateGroups::Holders found = routing_->holders_of(recipient);
        holders |= found.upstreams;
        ambiguous = ambiguous || found.ambiguous;
    }
    const std::string& profile_name = profile_->targets->profile->name;
    if (ambiguous) {
        // Groups with different certificates of the same name: the device encrypted to the one it was shown.
        const std::optional<size_t> shown = routing_->group_with_key(profile_->certificates->shown_to(token_key()));
        const uint32_t shown_holders = shown ? routing_->upstreams_of_group(*shown) & holders : 0;
        if (shown_holders != 0)
            holders = shown_holders;
        else
            LogLine(LogLevel::warn, "recipient_ambiguous")
                .field("token", connection_->log_fields().token_id)
                .field("profile", profile_name)
                .field("detail",
                       "certificates of several upstream groups carry the recipient's issuer and serial, and this "
                       "token's GetCACert answer is not known: sent to any of them")
                .emit();
    }
    if (holders == 0) {
        const std::string recipient = recipients.value->key_transport.empty()
                                          ? std::string("none")
                                          : pkcs7::describe(recipients.value->key_transport.front());
        // Every upstream's certificates known: none can decrypt it. Else it may be one not known yet.
        const bool unknown = routing_->all_known();
        LogLine(unknown ? LogLevel::info : LogLevel::warn, unknown ? "unknown_recipient" : "ra_unavailable")
            .field("token", connection_->log_fields().token_id)
            .field("profile", profile_name)
            .field("recipient", recipient)
            .field("detail", unknown ? "no upstream holds the certificate the request is encrypted to"
                                     : "the certificates of some upstreams are not known yet")
            .emit();
        if (unknown)
            take_connection()->respond_text(400, "unknown_recipient", "unknown_recipient");
        else
            take_connection()->respond_text(503, "ra_unavailable", "ra_unavailable", false, kRaUnavailableRetryAfter);
        return false;
    }
    if (!profile_->any_in_service(holders)) {
        LogLine(LogLevel::warn, "ra_unavailable")
            .field("token", connection_->log_fields().token_id)
            .field("profile", profile_name)
            .field("detail", "every upstream holding the request's RA certificate is out of service")
            .emit();
        take_connection()->respond_text(503, "ra_unavailable", "ra_unavailable", false, kRaUnavailableRetryAfter);
        return false;
    }
    upstreams_excluded_ = routing_->every_upstream() & ~holders;
    return true;
}

// Upstreams with different certificates: a device is shown one group's — that of the upstream
// the round-robin picks among those in service whose certificates are known — and its GetCACert
// goes to that upstream first. The cache keeps each group's answer apart.
void ScepRequestHandler::choose_ca_group() {
    routing_ = profile_->routing_groups();
    if (!routing_) return;
    const uint32_t unknown = routing_->every_upstream() & ~routing_->known_upstreams();
    const std::optional<size_t> index = profile_->pick_upstream(0, unknown);
    if (!index) return;
    preferred_upstream_ = index;
    ca_group_key_ = group_key_of_upstream(*index);
}

// The token was shown this group's certificates (GetCACert): its requests go to that group when
// their recipient's name doesn't tell the groups apart.
void ScepRequestHandler::remember_shown_group(uint64_t group_key) {
    if (routing_ && group_key != 0) profile_->certificates->remember_shown(token_key(), group_key);
}

uint64_t ScepRequestHandler::token_key() const {
    uint64_t key = 0;
    for (size_t i = 0; i < sizeof key; ++i) key = key << 8 | token_hash_.bytes[i];
    return key;
}

uint64_t ScepRequestHandler::group_key_of_upstream(size_t upstream) const {
    const std::optional<size_t> group = routing_->group_of_upstream(upstream);
    return group ? routing_->group_key(*group) : 0;
}

// The message that binds a token to its transaction has its signature checked (the full parse);
// resends and polls of a bound transaction don't pay for it again. Forwarded either way: the CA
// is the judge. Logged because a tampered message means something.
void ScepRequestHandler::check_binding_signature() {
    // A message the DER walk left to the full parse was verified then: not parsed twice.
    std::optional<pkcs7::PkiMessageParse> parsed;
    if (!request_message_.verified) {
        parsed = pkcs7::parse_pki_message(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pki_der_.data()),
                                                                   pki_der_.size()));
        if (!parsed->ok()) return;  // read once already: the walk and the full parse agree on what they both read
    }
    const pkcs7::PkiMessageInfo& info = parsed ? *parsed->value : request_message_;
    if (info.signature_valid && info.content_digest_valid) return;
    LogLine(LogLevel::warn, "pki_message_signature_invalid")
        .field("token", connection_->log_fields().token_id)
        .field("signature_valid", info.signature_valid ? "true" : "false")
        .field("content_digest_valid", info.content_digest_valid ? "true" : "false")
        .emit();
}

bool ScepRequestHandler::message_type_allowed(pkcs7::MessageType type) const {
    const conf::ProfileConfig& profile = *profile_->targets->profile;
    switch (type) {
        case pkcs7::MessageType::pkcs_req:
        case pkcs7::MessageType::renewal_req:
        case pkcs7::MessageType::cert_poll: return true;
        case pkcs7::MessageType::get_cert: return profile.allow_get_cert;
        case pkcs7::MessageType::get_crl: return profile.allow_get_crl;
        default: return false;  // CertRep from a device, unknown types
    }
}

void ScepRequestHandler::forward_by_caps() {
    ScepProfile& profile = *profile_;
    const ScepOperation op = route_.operation;
    // PKIOperation (GET or POST upstream?) and other operations (listed?) depend on the upstream's capabilities.
    if (const CachedAnswer* caps = profile.ca_cache.find("GetCACaps", "", upstream_start_ns_)) {
        forward_with_caps(caps->body);
        return;
    }
    if (op == ScepOperation::pki_operation && is_post_) {
        // A device POSTs because the capabilities it was shown allow it: no need to ask first.
        send_upstream(ScepPhase::forwarding, AnswerUse::stream_and_read);
        return;
    }
    // Ask GetCACaps first; finish_probe continues with forward_with_caps.
    send_upstream(ScepPhase::probing_caps, AnswerUse::probe);
}

// The upstream's GetCACaps answer is known: decide how (and whether) to send the request.
void ScepRequestHandler::forward_with_caps(std::string_view caps) {
    AnswerUse use = AnswerUse::stream;
    if (route_.operation == ScepOperation::pki_operation) {
        // POST when the upstream takes it (no IIS query-string limits); else GET, canonically encoded.
        upstream_post_ = caps_list_has(caps, "POSTPKIOperation") || caps_list_has(caps, "SCEPStandard");
        if (!upstream_post_) {
            upstream_message_param_ = pkcs7::encode_message_parameter(
                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pki_der_.data()), pki_der_.size()));
            upstream_message_ = upstream_message_param_;
        }
        use = AnswerUse::stream_and_read;
    } else if (!caps_list_has(caps, route_.operation_text)) {
        // Other operations only when the upstream lists them (GetNextCACert is a capability keyword).
        take_connection()->respond_text(400, "operation_not_supported", "operation_not_supported");
        return;
    }
    send_upstream(ScepPhase::forwarding, use);
}

// Enters `phase` and sends to the next upstream; answers (stale, or 502) if no connection could even be started.
void ScepRequestHandler::send_upstream(ScepPhase phase, AnswerUse use) {
    enter(phase);
    if (start_try(use)) return;
    if (!answer_stale_on_failure())
        take_connection()->respond_text(502, "upstream_connect_failed", "upstream_unavailable");
}

// After a failed or refused try: the next one, on an upstream not tried yet, for the same use.
bool ScepRequestHandler::try_upstreams() { return start_try(try_.use()); }

// Starts a try on the next upstream the profile picks, within kMaxUpstreamAttempts. False when
// none could be started (no upstream left to try, or no connection could even be opened).
bool ScepRequestHandler::start_try(AnswerUse use) {
    while (upstream_attempts_ < kMaxUpstreamAttempts) {
        // GetCACert goes first to the upstream whose group it was given; the round-robin already moved on.
        const bool preferred = preferred_upstream_ && !(upstreams_tried_ & (1u << *preferred_upstream_));
        const std::optional<size_t> index = preferred ? preferred_upstream_
                                                      : profile_->pick_upstream(upstreams_tried_, upstreams_excluded_);
        preferred_upstream_.reset();
        if (!index) return false;
        ++upstream_attempts_;
        upstreams_tried_ |= 1u << *index;
        UpstreamEndpoint& endpoint = *profile_->upstreams[*index];
        ByteBuffer request;
        if (phase_ == ScepPhase::probing_caps) {
            build_upstream_request(request, *endpoint.target().config, "GetCACaps", "", nullptr);
        } else {
            const std::string_view body = route_.operation == ScepOperation::pki_operation ? pki_der_ : body_;
            build_upstream_request(request, *endpoint.target().config, upstream_operation_, upstream_message_,
                                   upstream_post_ ? &body : nullptr);
        }
        if (try_.start(endpoint, *index, std::move(request), use, *this)) return true;
        record_upstream(UpstreamOutcome::connect_failed);
    }
    return false;
}

// Whether a failed or refused try may be followed by another (on an upstream not tried yet).
bool ScepRequestHandler::may_retry_upstream() const {
    return upstream_attempts_ < kMaxUpstreamAttempts &&
           profile_->can_pick_upstream(upstreams_tried_, upstreams_excluded_);
}

// GetCACert/GetCACaps when no upstream could answer: the cache's earlier answer, stale or not, if
// it still has one (stale-if-error; never past the CA certificate's expiry). True when answered.
bool ScepRequestHandler::answer_stale_on_failure() {
    const ScepOperation op = route_.operation;
    if (phase_ == ScepPhase::probing_caps || (op != ScepOperation::get_ca_cert && op != ScepOperation::get_ca_caps))
        return false;
    if (profile_->targets->profile->ca_cache_ttl.count() == 0) return false;
    const std::string_view key = op == ScepOperation::get_ca_caps ? std::string_view() : route_.message;
    const CachedAnswer* kept =
        profile_->ca_cache.find_for_upstream_failure(to_string(op), key, monotonic_ns(), ca_group_key_);
    if (!kept) return false;
    remember_shown_group(kept->group);
    host_.metrics().count_ca_cache_stale();
    LogLine(LogLevel::warn, "ca_cache_stale_served")
        .field("profile", profile_->targets->profile->name)
        .field("operation", to_string(op))
        .emit();
    const std::string body = shown_to_device(op, kept->body);
    const std::string content_type = kept->content_type;
    take_connection()->respond(200, content_type, body, "cache_stale");
    return true;
}

void ScepRequestHandler::on_upstream_head(const http::HttpResponse& head) {
    // A server error to a GetCACert/GetCACaps while another upstream may answer: ask that one instead.
    const bool may_discard = head.status >= 500 && idempotent() && connection_ && !connection_->response_started() &&
                             may_retry_upstream();
    if (try_.on_head(head, may_discard) != UpstreamTry::HeadAction::to_device || !connection_) return;
    const bool length_known = head.framing == http::BodyFraming::content_length ||
                              head.framing == http::BodyFraming::none;
    std::optional<uint64_t> length;
    if (length_known) length = head.framing == http::BodyFraming::content_length ? head.content_length.value_or(0) : 0;
    connection_->begin_response(head.status, head.content_type, length);
}

void ScepRequestHandler::on_upstream_body(std::string_view data) {
    if (try_.on_body(data) && connection_) connection_->send_body(data);
}

// What a device is shown for a cached or held answer: GetCACaps may gain POSTPKIOperation.
std::string ScepRequestHandler::shown_to_device(ScepOperation op, std::string_view body) const {
    if (op == ScepOperation::get_ca_caps && profile_->targets->profile->advertise_post_pki_operation)
        return caps_with_post_pki_operation(body);
    return std::string(body);
}

void ScepRequestHandler::store_kept_answer(bool caps) {
    CachedAnswer answer;
    answer.operation = caps ? "GetCACaps" : "GetCACert";
    answer.message = caps ? std::string() : std::string(route_.message);
    if (!caps && routing_) {
        // Kept as the answer of the group that gave it (a retry may have reached another group).
        answer.group = group_key_of_upstream(try_.index());
        if (answer.group == 0) return;  // certificates not known yet: no group to keep it for
    }
    answer.content_type = try_.content_type();
    answer.body = std::move(try_.body());
    // With a zero ttl an answer still settles this request's capability question, then is stale at once.
    set_cache_lifetime(answer, monotonic_ns(), ttl_ns(profile_->targets->profile->ca_cache_ttl), unix_now());
    profile_->ca_cache.store(std::move(answer));
}

void ScepRequestHandler::record_upstream(UpstreamOutcome outcome) {
    const ProfileMetrics& metrics = *profile_->metrics;
    metrics.upstream_requests[static_cast<size_t>(outcome)]->Increment();
    if (outcome == UpstreamOutcome::ok)
        metrics.upstream_duration->Observe(milliseconds_since(upstream_start_ns_) / 1000);
    // Passive health: the last exchange decides (active checks come with upstream failover).
    // With health checks, a refused connection takes the upstream out until `rise` checks pass
    // (passive ejection); without them, the gauge shows whether the last exchange reached it.
    const bool reachable = outcome != UpstreamOutcome::connect_failed && outcome != UpstreamOutcome::connect_timeout;
    UpstreamHealth& health = *try_.endpoint().target().health;
    if (!reachable)
        health.mark(false, to_string(outcome));
    else if (!profile_->targets->profile->health_check)
        health.mark(true, "exchange_ok");
}

// Reads the upstream's CertRep (in the clear, like the request) for the log and metrics; the
// device gets the bytes unchanged either way.
void ScepRequestHandler::observe_cert_rep() {
    size_t type_index = 0;
    switch (request_message_.message_type) {
        case pkcs7::MessageType::renewal_req: type_index = 1; break;
        case pkcs7::MessageType::cert_poll: type_index = 2; break;
        case pkcs7::MessageType::get_cert: type_index = 3; break;
        case pkcs7::MessageType::get_crl: type_index = 4; break;
        default: type_index = 0; break;
    }
    const auto& counters = profile_->metrics->pki_status[type_index];
    // An HTTP error is counted as such; a body too big to keep is forwarded unread.
    if (try_.status() != 200 || !try_.kept()) return;
    // Read and done with here, synchronously: one per worker thread, its capacity kept, serves every
    // connection (a member would cost each idle keep-alive connection its size).
    thread_local pkcs7::PkiMessageInfo cert_rep;
    const pkcs7::PkiMessageInfo& rep = cert_rep;
    const std::string& captured = try_.body();
    const auto failure = pkcs7::read_pki_message_attributes_into(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(captured.data()), captured.size()), {}, cert_rep);
    if (failure || rep.message_type != pkcs7::MessageType::cert_rep || !rep.pki_status) {
        counters[3]->Increment();
        connection_->log_fields().pki_status = "unparsable";
        LogLine(LogLevel::warn, "upstream_certrep_unparsable")
            .field("profile", profile_->targets->profile->name)
            .field("error", failure ? pkcs7::to_string(failure->error) : "not_a_certrep")
            .emit();
        return;
    }
    const size_t status_index = *rep.pki_status == pkcs7::PkiStatus::success   ? 0
                                : *rep.pki_status == pkcs7::PkiStatus::failure ? 1
                                                                               : 2;
    counters[status_index]->Increment();
    connection_->log_fields().pki_status = pkcs7::to_string(*rep.pki_status);
    cert_rep_status_ = *rep.pki_status;
    if (rep.transaction_id != request_message_.transaction_id)
        LogLine(LogLevel::warn, "certrep_transaction_mismatch")
            .field("profile", profile_->targets->profile->name)
            .emit();
    if (*rep.pki_status == pkcs7::PkiStatus::failure)
        LogLine(LogLevel::info, "enrollment_failed")
            .field("token", connection_->log_fields().token_id)
            .field("profile", profile_->targets->profile->name)
            .field("fail_info", rep.fail_info ? pkcs7::to_string(*rep.fail_info) : "-")
            .field("fail_info_text", rep.fail_info_text.value_or("-"))
            .emit();
}

void ScepRequestHandler::on_upstream_complete() {
    try_.complete();
    record_upstream(UpstreamOutcome::ok);
    if (!connection_) return;
    if (try_.discarded()) {
        LogLine(LogLevel::warn, "upstream_error_status")
            .field("profile", profile_->targets->profile->name)
            .field("upstream", try_.endpoint().target().label)
            .field("status", try_.status())
            .emit();
        if (!try_upstreams()) take_connection()->respond_text(502, "upstream_connect_failed", "upstream_unavailable");
        return;
    }
    switch (try_.use()) {
        case AnswerUse::hold: finish_held(); return;
        case AnswerUse::probe: finish_probe(); return;
        case AnswerUse::stream_and_cache:
            if (try_.kept() && try_.status() == 200) {
                // Not what the watcher last fetched from this upstream: it fetches again at once.
                if (route_.operation == ScepOperation::get_ca_cert && profile_->certificates)
                    profile_->certificates->note_answer(try_.index(), ProfileCertificates::answer_hash(try_.body()));
                store_kept_answer(route_.operation == ScepOperation::get_ca_caps);
            }
            break;
        case AnswerUse::stream_and_read: observe_cert_rep(); break;
        case AnswerUse::stream: break;
    }
    if (route_.operation == ScepOperation::get_ca_cert && try_.status() == 200 && routing_)
        remember_shown_group(group_key_of_upstream(try_.index()));
    finish_forwarded();
}

// GetCACaps, held to be shown with POSTPKIOperation (the cache keeps the upstream's own words).
void ScepRequestHandler::finish_held() {
    const int status = try_.status();
    const std::string content_type = status == 200 ? try_.content_type() : "text/plain";
    std::string body = status == 200 ? shown_to_device(ScepOperation::get_ca_caps, try_.body())
                                     : std::move(try_.body());
    if (status == 200 && profile_->targets->profile->ca_cache_ttl.count() > 0) store_kept_answer(true);
    connection_->log_fields().upstream_ms = milliseconds_since(upstream_start_ns_);
    take_connection()->respond(status, content_type, body, "forwarded");
}

// The capabilities asked before another operation are known (cached): forward that operation.
void ScepRequestHandler::finish_probe() {
    if (try_.kept() && try_.status() == 200) store_kept_answer(true);
    const CachedAnswer* caps = profile_->ca_cache.find("GetCACaps", "", 0);
    if (try_.status() != 200 || !caps) {
        take_connection()->respond_text(502, "upstream_caps_unavailable", "upstream_error");
        return;
    }
    upstream_attempts_ = 0;
    upstreams_tried_ = 0;
    forward_with_caps(caps->body);
}

// The streamed answer is complete. A PKIOperation's transaction is finished in the store after
// the device has its answer; the worker takes the store's reply (it is only logged), so neither a
// pipelined next request nor this handler's end can leave a store call owed to a handler.
void ScepRequestHandler::finish_forwarded() {
    connection_->log_fields().upstream_ms = milliseconds_since(upstream_start_ns_);
    // Taken before answering: the answer may start this handler's next (pipelined) request.
    const std::optional<token::FinishQuery> finish = transaction_end();
    const int status = try_.status();
    take_connection()->end_response(status, "forwarded");
    if (finish) host_.store_session().finish_transaction(*finish, host_.transaction_finish_logger());
}

void ScepRequestHandler::on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) {
    try_.failed();  // it closed itself
    record_upstream(outcome_of(failure));
    if (!connection_) return;
    ResponseChannel& connection = *connection_;
    LogLine(LogLevel::warn, "upstream_failed")
        .field("profile", profile_->targets->profile->name)
        .field("upstream", try_.endpoint().target().label)
        .field("failure", to_string(failure))
        .field("request_sent", request_bytes_sent ? "true" : "false")
        .emit();
    connection.log_fields().upstream_ms = milliseconds_since(upstream_start_ns_);
    if (connection.response_started()) {
        // Part of the answer is already with the device: the only honest signal left is to close.
        take_connection()->abort_response(try_.status(), to_string(failure));
        return;
    }
    // GetCACert/GetCACaps are idempotent: retried elsewhere after any failure the device saw
    // nothing of. A PKIOperation only when its connect failed, so no byte of it went out: its
    // challenge is single-use and the CA may already be working on it.
    const bool connect_failed = failure == UpstreamFailure::connect_failed ||
                                failure == UpstreamFailure::connect_timeout;
    const bool retriable = idempotent() || (connect_failed && !request_bytes_sent);
    if (retriable && try_upstreams()) return;
    if (answer_stale_on_failure()) return;
    take_connection();
    switch (failure) {
        case UpstreamFailure::response_timeout:
            connection.respond_text(504, "upstream_timeout", "upstream_timeout");
            return;
        case UpstreamFailure::connect_failed:
        case UpstreamFailure::connect_timeout:
            connection.respond_text(502, to_string(failure), "upstream_unavailable");
            return;
        default: connection.respond_text(502, to_string(failure), "upstream_error"); return;
    }
}

}  // namespace scepproxy::proxy
