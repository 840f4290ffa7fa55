// Test-only fakes for ScepRequestHandler: a recording connection, an asynchronous store session, scripted upstreams, a host.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/limits/rate_limiter.h"
#include "proxy/net/response_channel.h"
#include "proxy/scep/scep_host.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_endpoint.h"
#include "proxy/upstream/upstream_target.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy::test {

// What the handler answered, as the device would see it.
struct RecordedAnswer {
    int status = 0;
    std::string reason;
    std::string content_type;
    std::string body;
    std::string extra_header_lines;
    bool streamed = false;  // begin_response/send_body/end_response
    bool ended = false;     // a streamed answer completed
    bool aborted = false;   // a streamed answer cut
};

class FakeChannel final : public ResponseChannel {
public:
    void respond_text(int status, std::string_view reason, std::string_view body, bool close_after = false,
                      std::string_view extra_header_lines = {}) override;
    void respond(int status, std::string_view content_type, std::string_view body, std::string_view reason,
                 std::string_view extra_header_lines = {}) override;
    void begin_response(int status, std::string_view content_type, std::optional<uint64_t> content_length) override;
    void send_body(std::string_view data) override;
    void end_response(int status, std::string_view reason) override;
    void abort_response(int status, std::string_view reason) override;
    bool response_started() const override { return started_; }
    RequestLogFields& log_fields() override { return log_fields_; }

    std::vector<RecordedAnswer> answers;
    // Runs inside the call that completes an answer, as a connection starts its next pipelined request.
    std::function<void()> after_answer;

private:
    void answered();
    bool started_ = false;
    RequestLogFields log_fields_;
};

// An asynchronous session: every call waits in `calls` until the test delivers it (or, with
// `synchronous`, is answered before it returns). cancel() drops the calls of that callback.
// Store answers with only the fields a test sets (the rest as the store leaves them).
inline token::AccessDecision access_decision(token::AccessVerdict verdict, std::string profile) {
    token::AccessDecision decision;
    decision.verdict = verdict;
    decision.profile = std::move(profile);
    return decision;
}
inline token::BindDecision bind_decision(token::BindVerdict verdict) {
    token::BindDecision decision;
    decision.verdict = verdict;
    return decision;
}

class FakeStoreSession final : public token::EnrollmentSession {
public:
    enum class Kind { access, bind, finish };
    struct Call {
        Kind kind;
        token::SessionCallback* done;
        token::AccessQuery access;
        token::BindQuery bind;
        token::FinishQuery finish;
    };

    void check_access(const token::AccessQuery& query, token::SessionCallback& done) override;
    void bind_transaction(const token::BindQuery& query, token::SessionCallback& done) override;
    void finish_transaction(const token::FinishQuery& query, token::SessionCallback& done) override;
    void cancel(token::SessionCallback& done) override;

    // Answers the oldest pending call (false when none is pending).
    bool deliver_next();
    void deliver_all() {
        while (deliver_next()) {
        }
    }
    size_t pending_for(const token::SessionCallback* done) const;

    bool synchronous = false;
    token::AccessDecision access_answer = access_decision(token::AccessVerdict::allow, "corp");
    token::BindDecision bind_answer = bind_decision(token::BindVerdict::bound);
    std::deque<Call> calls;
    std::vector<Call> finished;  // every finish_transaction asked for, in order
    unsigned cancels = 0;

private:
    void queued(Call call);
};

// One upstream whose exchanges the test answers through their sinks.
class FakeEndpoint final : public UpstreamEndpoint {
public:
    struct Exchange final : UpstreamExchange {
        UpstreamResponseSink* sink = nullptr;
        std::string request;
        bool finished = false;
        bool abandoned = false;
        bool failed = false;
        bool done() const { return finished || abandoned || failed; }
    };

    explicit FakeEndpoint(const UpstreamTarget& target) : target_(target) {}
    const UpstreamTarget& target() const override { return target_; }
    UpstreamExchange* start_exchange(ByteBuffer&& request, UpstreamResponseSink& sink) override;
    void finish_exchange(UpstreamExchange& exchange) override { static_cast<Exchange&>(exchange).finished = true; }
    void abandon_exchange(UpstreamExchange& exchange) override { static_cast<Exchange&>(exchange).abandoned = true; }

    Exchange& last() { return *exchanges.back(); }
    // Answers the last exchange with a whole response.
    void answer(int status, std::string_view content_type, std::string_view body);
    // Fails the last exchange as its connection would.
    void fail(UpstreamFailure failure, bool request_bytes_sent, bool response_started = false);

    bool refuse_connections = false;  // start_exchange finds no connection
    std::vector<std::unique_ptr<Exchange>> exchanges;

private:
    const UpstreamTarget& target_;
};

// The worker, as a handler sees it: one profile "corp" with `upstream_count` fake upstreams.
class FakeHost final : public ScepHost {
public:
    explicit FakeHost(size_t upstream_count = 2, std::function<void(conf::ProfileConfig&)> configure = {});
    ~FakeHost();

    std::shared_ptr<ScepGeneration> scep_generation() override { return generation; }
    token::EnrollmentSession& store_session() override { return store; }
    token::SessionCallback& transaction_finish_logger() override { return finish_logger; }
    RateLimiter& client_request_limiter() override { return *client_limiter; }
    RateLimiter& token_request_limiter() override { return *token_limiter; }
    WorkerMetrics& metrics() override { return *worker_metrics; }
    const conf::LimitsConfig& limits() const override { return config.limits; }

    FakeEndpoint& upstream(size_t i) { return *endpoints[i]; }
    size_t exchanges() const;

    struct FinishLogger final : token::SessionCallback {
        void on_transaction_finished(const token::FinishResult& result) override { results.push_back(result); }
        std::vector<token::FinishResult> results;
    };

    conf::Config config;
    std::vector<ProfileTargets> targets;
    std::unique_ptr<ProxyMetrics> proxy_metrics;
    std::vector<ProfileMetrics> profile_metrics;
    std::unique_ptr<WorkerMetrics> worker_metrics;
    std::unique_ptr<RateLimiter> client_limiter;
    std::unique_ptr<RateLimiter> token_limiter;
    std::vector<std::unique_ptr<FakeEndpoint>> endpoints;
    std::shared_ptr<ScepGeneration> generation;
    FakeStoreSession store;
    FinishLogger finish_logger;
};

}  // namespace scepproxy::proxy::test
