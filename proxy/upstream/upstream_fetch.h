// UpstreamFetch: one GET of a SCEP operation from one upstream on a fresh connection, with a deadline, its answer kept.
//
// What the process asks upstreams for itself, off the data path: health checks (GetCACaps),
// certificate refreshes (GetCACert) and `scepproxy check --probe`. One fetch at a time.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_pool.h"

struct event;

namespace scepproxy::proxy {

struct UpstreamFetchResult {
    int status = 0;  // the HTTP status; 0 when no answer arrived
    std::string content_type;
    std::string body;     // at most the fetch's max_body_bytes
    std::string failure;  // empty when an answer arrived; else "timeout", "connect_failed", a transport failure
    bool answered() const { return failure.empty(); }
};

class UpstreamFetch final : public UpstreamResponseSink {
public:
    using Done = std::function<void(UpstreamFetchResult&)>;

    // The connection is made for each fetch (the connect is part of what is checked), closed after.
    UpstreamFetch(UpstreamHost& host, const conf::ProfileConfig& profile, const UpstreamTarget& target);
    ~UpstreamFetch();  // a fetch in flight is abandoned; `done` is not called
    UpstreamFetch(const UpstreamFetch&) = delete;
    UpstreamFetch& operator=(const UpstreamFetch&) = delete;

    // GET ?operation=`operation` (no message). `done` is called once, possibly before start returns
    // (no connection could be started). False, and nothing called, when a fetch is in flight.
    bool start(std::string_view operation, conf::Duration timeout, size_t max_body_bytes, Done done);
    bool in_flight() const { return in_flight_ != nullptr; }
    const UpstreamTarget& target() const { return target_; }

    void on_upstream_head(const http::HttpResponse& head) override;
    void on_upstream_body(std::string_view data) override;
    void on_upstream_complete() override;
    void on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) override;

private:
    static void on_deadline(int fd, short what, void* arg);
    void finish(std::string failure);

    const UpstreamTarget& target_;
    UpstreamPool pool_;
    event* deadline_event_ = nullptr;
    UpstreamConnection* in_flight_ = nullptr;
    size_t max_body_bytes_ = 0;
    UpstreamFetchResult result_;
    Done done_;
};

}  // namespace scepproxy::proxy
