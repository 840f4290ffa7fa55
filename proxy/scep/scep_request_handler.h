// ScepRequestHandler: one SCEP connection's requests, one at a time, as an explicit state machine — token, store, cache, upstream.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pkcs7/pki_message.h"
#include "proxy/limits/client_connection_counter.h"
#include "proxy/limits/limit_key.h"
#include "proxy/net/request_handler.h"
#include "proxy/net/response_channel.h"
#include "proxy/scep/ca_fetch_coalescer.h"
#include "proxy/scep/scep_host.h"
#include "proxy/scep/scep_route.h"
#include "proxy/scep/upstream_try.h"
#include "proxy/upstream/upstream_connection.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

// Where a request is. Each value says what the handler waits for; between requests it is idle.
enum class ScepPhase {
    idle,               // no request
    awaiting_access,    // the store's check of the token (and device)
    awaiting_bind,      // the store's binding of the token to the PKIOperation's transaction
    awaiting_ca_fetch,  // another request's fetch of the same CA answer (single-flight)
    probing_caps,       // the upstream's GetCACaps, asked before forwarding the request
    forwarding,         // the request itself, upstream
};
const char* to_string(ScepPhase phase);

class ScepRequestHandler final : public RequestHandler,
                                 public token::SessionCallback,
                                 public UpstreamResponseSink,
                                 public CaFetchWaiter {
public:
    // client: the client's address group; client_slot: its place in the per-client connection count.
    ScepRequestHandler(ScepHost& host, const LimitKey& client, ClientConnectionCounter::Slot client_slot)
        : host_(host), client_(client), client_slot_(std::move(client_slot)) {}
    ~ScepRequestHandler() override;

    void on_request(HttpConnection& connection, const IncomingRequest& request) override;
    void on_abort() override;
    // on_request, for any channel (the tests' fake connection).
    void handle(ResponseChannel& connection, const IncomingRequest& request);

    ScepPhase phase() const { return phase_; }
    // Store calls made and not yet answered or cancelled.
    unsigned store_calls_owed() const { return store_calls_owed_; }

    void on_access_decided(const token::AccessDecision& decision) override;
    void on_transaction_bound(const token::BindDecision& decision) override;
    void on_upstream_head(const http::HttpResponse& head) override;
    void on_upstream_body(std::string_view data) override;
    void on_upstream_complete() override;
    void on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) override;
    void on_ca_fetch_done() override;

private:
    // The one place the phase changes; checks the move is one the machine makes.
    void enter(ScepPhase next);
    void check_access(const token::TokenHash& hash);
    void forward(ScepProfile& profile);
    void answer_ca_request(bool first_look);
    bool inspect_pki_message();
    bool route_by_recipient();
    void choose_ca_group();
    uint64_t group_key_of_upstream(size_t upstream) const;
    void remember_shown_group(uint64_t group_key);
    uint64_t token_key() const;
    void check_binding_signature();
    void forward_by_caps();
    void forward_with_caps(std::string_view caps);
    void send_upstream(ScepPhase phase, AnswerUse use);
    bool try_upstreams();
    bool start_try(AnswerUse use);
    bool may_retry_upstream() const;
    bool idempotent() const {
        return route_.operation != ScepOperation::pki_operation || phase_ == ScepPhase::probing_caps;
    }
    void finish_forwarded();
    void finish_held();
    void finish_probe();
    void observe_cert_rep();
    std::optional<token::FinishQuery> transaction_end() const;
    bool message_type_allowed(pkcs7::MessageType type) const;
    bool answer_stale_on_failure();
    void store_kept_answer(bool caps);
    std::string shown_to_device(ScepOperation op, std::string_view body) const;
    void record_upstream(UpstreamOutcome outcome);
    bool refuse_if_rate_limited(RateLimiter& limiter, const LimitKey& key, std::string_view reason);
    ResponseChannel* take_connection();
    void release_request(bool tell_waiters);

    ScepHost& host_;
    const LimitKey client_;
    const ClientConnectionCounter::Slot client_slot_;
    ScepPhase phase_ = ScepPhase::idle;
    unsigned store_calls_owed_ = 0;
    // The request in flight (null between requests, and once its answer has begun to finish).
    ResponseChannel* connection_ = nullptr;
    // The configuration it started with: a reload while it runs doesn't change its course.
    std::shared_ptr<ScepGeneration> generation_;
    ScepProfile* profile_ = nullptr;
    bool is_post_ = false;
    std::string_view body_;
    ScepRoute route_;
    token::TokenHash token_hash_;
    // PKIOperation: what the device's pkiMessage shows in the clear. Kept from request to request,
    // so its strings' capacity is reused.
    pkcs7::PkiMessageInfo request_message_;
    std::vector<uint8_t> decoded_message_;             // a GET message=, decoded
    std::string_view pki_der_;                         // the pkiMessage: body_ or decoded_message_
    std::optional<pkcs7::PkiStatus> cert_rep_status_;  // the upstream CertRep's pkiStatus, once read
    // What goes upstream (differs from what the device sent when the proxy translates GET <-> POST).
    std::string_view upstream_operation_;
    std::string_view upstream_message_;
    std::string upstream_message_param_;
    bool upstream_post_ = false;
    // The upstream tries: the one in flight, how many were made, which upstreams (bit i: upstream i).
    UpstreamTry try_;
    unsigned upstream_attempts_ = 0;
    uint32_t upstreams_tried_ = 0;
    int64_t upstream_start_ns_ = 0;
    // Upstreams holding different certificates: the groups this request is routed by (else null),
    // the upstreams it must not go to (another RA's), and for GetCACert the chosen group's
    // upstream (tried first) and cache key (0: the profile's one answer).
    std::shared_ptr<const UpstreamCertificateGroups> routing_;
    uint32_t upstreams_excluded_ = 0;
    std::optional<size_t> preferred_upstream_;
    uint64_t ca_group_key_ = 0;
    // The coalescer whose fetch this request leads (its waiters are told when it ends), or null.
    CaFetchCoalescer* leading_ca_fetch_ = nullptr;
};

}  // namespace scepproxy::proxy
