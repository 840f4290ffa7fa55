// UpstreamTry: starting one exchange, sorting its answer into streamed, kept or dropped, handing the connection back.
#include "proxy/scep/upstream_try.h"

#include "proxy/scep/ca_answer_cache.h"

namespace scepproxy::proxy {

bool UpstreamTry::start(UpstreamEndpoint& endpoint, size_t index, ByteBuffer&& request, AnswerUse use,
                        UpstreamResponseSink& sink) {
    endpoint_ = &endpoint;
    index_ = index;
    use_ = use;
    status_ = 0;
    body_.clear();
    exchange_ = endpoint.start_exchange(std::move(request), sink);
    state_ = exchange_ ? State::awaiting_head : State::idle;
    return exchange_ != nullptr;
}

UpstreamTry::HeadAction UpstreamTry::on_head(const http::HttpResponse& head, bool may_discard) {
    status_ = head.status;
    if (head.status >= 500 && may_discard) {
        state_ = State::discarding;
        return HeadAction::discard;
    }
    if (use_ == AnswerUse::hold) {
        state_ = State::keeping_all;
    } else if (use_ != AnswerUse::stream && head.status == 200) {
        state_ = State::keeping_ok;
    } else {
        state_ = State::streaming;
    }
    if (state_ == State::keeping_ok || (state_ == State::keeping_all && head.status == 200))
        content_type_ = head.content_type;
    return use_ == AnswerUse::hold || use_ == AnswerUse::probe ? HeadAction::keep : HeadAction::to_device;
}

bool UpstreamTry::on_body(std::string_view data) {
    switch (state_) {
        case State::discarding: return false;
        case State::keeping_all:
            // Held to be shown whole: cut at the limit (no capability list is that long).
            if (body_.size() + data.size() <= CaAnswerCache::kMaxBodyBytes) body_.append(data);
            return false;
        case State::keeping_ok: {
            const size_t limit = use_ == AnswerUse::stream_and_read ? kMaxCertRepBytes : CaAnswerCache::kMaxBodyBytes;
            if (body_.size() + data.size() <= limit) {
                body_.append(data);
            } else {
                state_ = State::streaming;  // too big to keep: still forwarded
                std::string().swap(body_);
            }
            break;
        }
        case State::idle:
        case State::awaiting_head:
        case State::streaming: break;
    }
    return use_ != AnswerUse::probe && use_ != AnswerUse::hold;
}

void UpstreamTry::complete() {
    UpstreamExchange* exchange = exchange_;
    exchange_ = nullptr;
    if (exchange) endpoint_->finish_exchange(*exchange);
}

void UpstreamTry::abandon() {
    UpstreamExchange* exchange = exchange_;
    end();
    if (exchange) endpoint_->abandon_exchange(*exchange);
}

void UpstreamTry::reset() {
    state_ = State::idle;
    status_ = 0;
    std::string().swap(body_);
}

void UpstreamTry::end() {
    exchange_ = nullptr;
    if (state_ == State::awaiting_head) state_ = State::idle;
}

}  // namespace scepproxy::proxy
