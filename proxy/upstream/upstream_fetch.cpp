// UpstreamFetch: GET on a fresh pooled-but-never-kept connection, a deadline timer, the answer collected up to a bound.
#include "proxy/upstream/upstream_fetch.h"

#include <event2/event.h>

#include "proxy/upstream/upstream_host.h"
#include "proxy/upstream/upstream_request.h"

namespace scepproxy::proxy {

UpstreamFetch::UpstreamFetch(UpstreamHost& host, const conf::ProfileConfig& profile, const UpstreamTarget& target)
    : target_(target),
      pool_(host, profile, target, 0),  // keeps nothing idle: each fetch connects anew
      deadline_event_(event_new(host.base(), -1, 0, &UpstreamFetch::on_deadline, this)) {}

UpstreamFetch::~UpstreamFetch() {
    if (in_flight_) in_flight_->abandon();
    event_free(deadline_event_);
}

bool UpstreamFetch::start(std::string_view operation, conf::Duration timeout, size_t max_body_bytes, Done done) {
    if (in_flight_) return false;
    result_ = UpstreamFetchResult{};
    max_body_bytes_ = max_body_bytes;
    done_ = std::move(done);
    in_flight_ = pool_.acquire();
    if (!in_flight_) {
        finish("connect_failed");
        return true;
    }
    const timeval deadline{static_cast<time_t>(timeout.count() / 1000),
                           static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    event_add(deadline_event_, &deadline);
    ByteBuffer request;
    build_upstream_request(request, *target_.config, operation, "", nullptr);
    in_flight_->send(std::move(request), false, this);
    return true;
}

void UpstreamFetch::on_upstream_head(const http::HttpResponse& head) {
    result_.status = head.status;
    result_.content_type = std::string(head.content_type);
}

void UpstreamFetch::on_upstream_body(std::string_view data) {
    if (result_.body.size() + data.size() > max_body_bytes_) {
        // Over the bound: the rest is not kept, and the answer counts as too large.
        result_.failure = "body_too_large";
        return;
    }
    result_.body.append(data);
}

void UpstreamFetch::on_upstream_complete() {
    UpstreamConnection* connection = in_flight_;
    in_flight_ = nullptr;
    pool_.release(connection);  // closed: the pool keeps nothing idle
    finish(std::move(result_.failure));
}

void UpstreamFetch::on_upstream_failed(UpstreamFailure failure, bool, bool) {
    in_flight_ = nullptr;  // it closed itself
    finish(to_string(failure));
}

void UpstreamFetch::on_deadline(int, short, void* arg) { static_cast<UpstreamFetch*>(arg)->finish("timeout"); }

void UpstreamFetch::finish(std::string failure) {
    event_del(deadline_event_);
    if (in_flight_) {  // the deadline passed first
        in_flight_->abandon();
        in_flight_ = nullptr;
    }
    result_.failure = std::move(failure);
    if (!result_.failure.empty()) result_.status = 0;
    // Moved out first: `done` may start the next fetch.
    Done done = std::move(done_);
    done_ = nullptr;
    if (done) done(result_);
}

}  // namespace scepproxy::proxy
