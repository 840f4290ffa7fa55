// ScepRequestHandler: the SCEP listener's handling of one request — route, token check, cache, forward upstream.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <optional>
#include <string_view>
#include <vector>

#include "proxy/limits/client_connection_counter.h"
#include "proxy/limits/limit_key.h"
#include "proxy/scep/ca_fetch_coalescer.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/limits/rate_limiter.h"
#include "proxy/net/request_handler.h"
#include "proxy/scep/scep_route.h"
#include "proxy/upstream/upstream_connection.h"
#include "pkcs7/pki_message.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

class HttpConnection;
class UpstreamPool;
class Worker;
struct CachedAnswer;
struct WorkerGeneration;
struct WorkerProfile;

class ScepRequestHandler final : public RequestHandler,
                                 public token::SessionCallback,
                                 public UpstreamResponseSink,
                                 public CaFetchWaiter {
public:
    // client: the client's address group; client_slot: its place in the per-client connection count.
    ScepRequestHandler(Worker& worker, const LimitKey& client, ClientConnectionCounter::Slot client_slot)
        : worker_(worker), client_(client), client_slot_(std::move(client_slot)) {}
    ~ScepRequestHandler() override;

    void on_request(HttpConnection& connection, const IncomingRequest& request) override;
    void on_abort() override;

    void on_access_decided(const token::AccessDecision& decision) override;
    void on_transaction_bound(const token::BindDecision& decision) override;
    void on_transaction_finished(const token::FinishResult& result) override;
    void on_upstream_head(const http::HttpResponse& head) override;
    void on_upstream_body(std::string_view data) override;
    void on_upstream_complete() override;
    void on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) override;
    void on_ca_fetch_done() override;

private:
    enum class Capture { none, ca_answer, pki_response };

    void forward(WorkerProfile& profile);
    void answer_ca_request(bool first_look);
    bool inspect_pki_message();
    void check_binding_signature();
    void forward_by_caps();
    std::optional<token::FinishQuery> transaction_end() const;
    bool message_type_allowed(pkcs7::MessageType type) const;
    void forward_with_caps(std::string_view caps);
    void observe_cert_rep();
    void send_upstream();
    bool answer_stale_on_failure();
    bool try_upstreams();
    bool start_upstream_attempt(size_t index);
    bool may_retry_upstream() const;
    bool idempotent() const { return route_.operation != ScepOperation::pki_operation || probing_caps_; }
    void store_captured_answer();
    std::string shown_to_device(ScepOperation op, std::string_view body) const;
    void record_upstream(UpstreamOutcome outcome);
    HttpConnection* take_connection();
    bool refuse_if_rate_limited(RateLimiter& limiter, const LimitKey& key, std::string_view reason);
    void release_request();

    Worker& worker_;
    const LimitKey client_;
    const ClientConnectionCounter::Slot client_slot_;
    // The request in flight (null between requests).
    HttpConnection* connection_ = nullptr;
    // The configuration it started with: a reload while it runs doesn't change its course.
    std::shared_ptr<WorkerGeneration> generation_;
    bool is_post_ = false;
    std::string_view body_;
    ScepRoute route_;
    // PKIOperation: what the device's pkiMessage shows in the clear. Kept from request to request,
    // so its strings' capacity is reused.
    pkcs7::PkiMessageInfo request_message_;
    std::vector<uint8_t> decoded_message_;    // a GET message=, decoded
    std::string_view pki_der_;                // the pkiMessage: body_ or decoded_message_
    // What goes upstream (differs from what the device sent when the proxy translates GET <-> POST).
    std::string_view upstream_operation_;
    std::string_view upstream_message_;
    std::string upstream_message_param_;
    bool upstream_post_ = false;
    bool awaiting_store_ = false;              // a store answer is due to this handler
    token::TokenHash token_hash_;
    std::optional<pkcs7::PkiStatus> cert_rep_status_;  // the upstream CertRep's pkiStatus, once read
    WorkerProfile* profile_ = nullptr;
    UpstreamPool* upstream_pool_ = nullptr;
    size_t upstream_index_ = 0;
    UpstreamConnection* upstream_ = nullptr;
    unsigned upstream_attempts_ = 0;
    uint32_t upstreams_tried_ = 0;     // bit i: the profile's upstream i was tried for this request
    bool discarding_answer_ = false;   // an idempotent request's 5xx, dropped for a retry elsewhere
    int64_t upstream_start_ns_ = 0;
    int upstream_status_ = 0;
    bool probing_caps_ = false;        // asking the upstream's GetCACaps before forwarding another operation
    Capture capture_ = Capture::none;  // keep the answer: for the CA cache, or to read the CertRep
    std::string captured_;
    std::string captured_content_type_;
    CaFetchCoalescer* ca_fetches_ = nullptr;  // set while leading or waiting for a CA answer fetch
    bool leading_ca_fetch_ = false;
    bool waiting_for_ca_fetch_ = false;
    bool tearing_down_ = false;        // destroyed with its worker: nobody is told anything
    bool holding_answer_ = false;      // the answer is edited before the device sees it (GetCACaps)
    std::string held_;                 // a held answer that isn't a 200
};

}  // namespace scepproxy::proxy
