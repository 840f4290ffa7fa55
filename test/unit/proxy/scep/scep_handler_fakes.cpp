// Test-only fakes for ScepRequestHandler: recording, delivering and answering what the handler asks of its worker.
#include "test/unit/proxy/scep/scep_handler_fakes.h"

#include <algorithm>

#include <catch2/catch.hpp>

namespace scepproxy::proxy::test {

void FakeChannel::respond_text(int status, std::string_view reason, std::string_view body, bool,
                               std::string_view extra_header_lines) {
    REQUIRE_FALSE(started_);
    answers.push_back({status, std::string(reason), "text/plain", std::string(body), std::string(extra_header_lines)});
    answered();
}

void FakeChannel::respond(int status, std::string_view content_type, std::string_view body, std::string_view reason,
                          std::string_view extra_header_lines) {
    REQUIRE_FALSE(started_);
    answers.push_back({status, std::string(reason), std::string(content_type), std::string(body),
                       std::string(extra_header_lines)});
    answered();
}

void FakeChannel::begin_response(int status, std::string_view content_type, std::optional<uint64_t>) {
    REQUIRE_FALSE(started_);
    started_ = true;
    RecordedAnswer answer;
    answer.status = status;
    answer.content_type = std::string(content_type);
    answer.streamed = true;
    answers.push_back(answer);
}

void FakeChannel::send_body(std::string_view data) {
    REQUIRE(started_);
    answers.back().body.append(data);
}

void FakeChannel::end_response(int status, std::string_view reason) {
    REQUIRE(started_);
    CHECK(answers.back().status == status);
    answers.back().reason = std::string(reason);
    answers.back().ended = true;
    started_ = false;
    answered();
}

void FakeChannel::abort_response(int status, std::string_view reason) {
    REQUIRE(started_);
    answers.back().reason = std::string(reason);
    answers.back().aborted = true;
    started_ = false;
}

void FakeChannel::answered() {
    log_fields_ = RequestLogFields{};
    if (after_answer) {
        auto next = std::move(after_answer);
        after_answer = nullptr;
        next();
    }
}

void FakeStoreSession::queued(Call call) {
    calls.push_back(std::move(call));
    if (synchronous) deliver_next();
}

void FakeStoreSession::check_access(const token::AccessQuery& query, token::SessionCallback& done) {
    Call call{Kind::access, &done, query, {}, {}};
    queued(std::move(call));
}

void FakeStoreSession::bind_transaction(const token::BindQuery& query, token::SessionCallback& done) {
    Call call{Kind::bind, &done, {}, query, {}};
    queued(std::move(call));
}

void FakeStoreSession::finish_transaction(const token::FinishQuery& query, token::SessionCallback& done) {
    Call call{Kind::finish, &done, {}, {}, query};
    finished.push_back(call);
    queued(std::move(call));
}

void FakeStoreSession::cancel(token::SessionCallback& done) {
    ++cancels;
    calls.erase(std::remove_if(calls.begin(), calls.end(), [&](const Call& c) { return c.done == &done; }),
                calls.end());
}

bool FakeStoreSession::deliver_next() {
    if (calls.empty()) return false;
    const Call call = calls.front();
    calls.pop_front();
    switch (call.kind) {
        case Kind::access: call.done->on_access_decided(access_answer); break;
        case Kind::bind: call.done->on_transaction_bound(bind_answer); break;
        case Kind::finish: call.done->on_transaction_finished(token::FinishResult{token::StoreStatus::ok, {}}); break;
    }
    return true;
}

size_t FakeStoreSession::pending_for(const token::SessionCallback* done) const {
    return static_cast<size_t>(std::count_if(calls.begin(), calls.end(),
                                             [&](const Call& c) { return c.done == done; }));
}

UpstreamExchange* FakeEndpoint::start_exchange(ByteBuffer&& request, UpstreamResponseSink& sink) {
    if (refuse_connections) return nullptr;
    auto exchange = std::make_unique<Exchange>();
    exchange->sink = &sink;
    exchange->request = std::string(request.view());
    exchanges.push_back(std::move(exchange));
    return exchanges.back().get();
}

void FakeEndpoint::answer(int status, std::string_view content_type, std::string_view body) {
    Exchange& exchange = last();
    http::HttpResponse head;
    head.status = static_cast<uint16_t>(status);
    head.content_type = content_type;
    head.content_length = body.size();
    head.framing = http::BodyFraming::content_length;
    UpstreamResponseSink* sink = exchange.sink;
    sink->on_upstream_head(head);
    if (!body.empty()) sink->on_upstream_body(body);
    sink->on_upstream_complete();
}

void FakeEndpoint::fail(UpstreamFailure failure, bool request_bytes_sent, bool response_started) {
    Exchange& exchange = last();
    exchange.failed = true;
    exchange.sink->on_upstream_failed(failure, request_bytes_sent, response_started);
}

FakeHost::FakeHost(size_t upstream_count, std::function<void(conf::ProfileConfig&)> configure) {
    conf::ProfileConfig profile;
    profile.name = "corp";
    for (size_t i = 0; i < upstream_count; ++i) {
        conf::UpstreamConfig upstream;
        upstream.url = "http://ndes" + std::to_string(i + 1) + ".test/certsrv/mscep/mscep.dll";
        upstream.scheme = "http";
        upstream.host = "ndes" + std::to_string(i + 1) + ".test";
        upstream.port = 80;
        upstream.path = "/certsrv/mscep/mscep.dll";
        upstream.host_header = upstream.host;
        upstream.name = "ndes" + std::to_string(i + 1);
        profile.upstreams.push_back(upstream);
    }
    if (configure) configure(profile);
    config.profiles.push_back(profile);
    proxy_metrics = std::make_unique<ProxyMetrics>(config);
    worker_metrics = std::make_unique<WorkerMetrics>(*proxy_metrics);
    client_limiter = std::make_unique<RateLimiter>(RateLimit{}, 16);
    token_limiter = std::make_unique<RateLimiter>(RateLimit{}, 16);
    ProfileTargets profile_targets;
    profile_targets.profile = &config.profiles[0];
    for (const auto& upstream : config.profiles[0].upstreams) {
        UpstreamTarget target;
        target.config = &upstream;
        target.label = upstream.name;
        target.health =
            std::make_unique<UpstreamHealth>("corp", upstream.name, config.profiles[0].health_check.has_value());
        profile_targets.upstreams.push_back(std::move(target));
    }
    targets.push_back(std::move(profile_targets));
    profile_metrics.push_back(proxy_metrics->resolve_profile(config.profiles[0]));
    generation = std::make_shared<ScepGeneration>();
    ScepProfile scep_profile;
    scep_profile.targets = &targets[0];
    scep_profile.metrics = &profile_metrics[0];
    for (const auto& target : targets[0].upstreams) {
        endpoints.push_back(std::make_unique<FakeEndpoint>(target));
        scep_profile.upstreams.push_back(endpoints.back().get());
    }
    generation->profiles.push_back(std::move(scep_profile));
}

FakeHost::~FakeHost() = default;

size_t FakeHost::exchanges() const {
    size_t n = 0;
    for (const auto& endpoint : endpoints) n += endpoint->exchanges.size();
    return n;
}

}  // namespace scepproxy::proxy::test
