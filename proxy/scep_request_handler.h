// ScepRequestHandler: the SCEP listener's handling of one request — route, token check, cache, forward upstream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/metrics.h"
#include "proxy/request_handler.h"
#include "proxy/scep_route.h"
#include "proxy/upstream_connection.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

class HttpConnection;
class UpstreamPool;
class Worker;
struct CachedAnswer;
struct WorkerProfile;

class ScepRequestHandler final : public RequestHandler,
                                 public token::AccessCallback,
                                 public UpstreamResponseSink {
public:
    explicit ScepRequestHandler(Worker& worker) : worker_(worker) {}
    ~ScepRequestHandler() override;

    void on_request(HttpConnection& connection, const IncomingRequest& request) override;
    void on_abort() override;

    void on_access_decided(const token::AccessDecision& decision) override;
    void on_upstream_head(const http::HttpResponse& head) override;
    void on_upstream_body(std::string_view data) override;
    void on_upstream_complete() override;
    void on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) override;

private:
    void forward(WorkerProfile& profile);
    void send_upstream();
    bool start_upstream_attempt();
    void store_captured_answer();
    void record_upstream(UpstreamOutcome outcome);
    HttpConnection* take_connection();
    void release_request();

    Worker& worker_;
    // The request in flight (null between requests).
    HttpConnection* connection_ = nullptr;
    bool is_post_ = false;
    std::string_view body_;
    ScepRoute route_;
    bool awaiting_access_ = false;
    WorkerProfile* profile_ = nullptr;
    UpstreamPool* upstream_pool_ = nullptr;
    size_t upstream_index_ = 0;
    UpstreamConnection* upstream_ = nullptr;
    unsigned upstream_attempts_ = 0;
    int64_t upstream_start_ns_ = 0;
    int upstream_status_ = 0;
    bool probing_caps_ = false;        // asking the upstream's GetCACaps before forwarding another operation
    bool capture_for_cache_ = false;   // keep this GetCACert/GetCACaps answer in the profile's cache
    std::string captured_;
    std::string captured_content_type_;
};

}  // namespace scepproxy::proxy
