// UpstreamTry: one try of a request on one upstream — its exchange, status, what is kept of the answer, timing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http/http_response_parser.h"
#include "proxy/net/byte_buffer.h"
#include "proxy/upstream/upstream_endpoint.h"

namespace scepproxy::proxy {

// What the handler wants of the answer, chosen before the try starts.
enum class AnswerUse {
    stream,            // to the device as it comes
    stream_and_read,   // to the device, and a 200's body kept to read the CertRep
    stream_and_cache,  // to the device, and a 200's body kept for the CA answer cache
    hold,              // kept whole (any status) and shown to the device once complete (edited GetCACaps)
    probe,             // a 200's body kept, nothing shown (the GetCACaps asked before another operation)
};

// Owned by the handler, one at a time; the handler stays the exchange's sink and decides retries
// (as Envoy's router keeps an UpstreamRequest per try beside its retry state).
class UpstreamTry {
public:
    // What becomes of the answer's head.
    enum class HeadAction { to_device, keep, discard };

    static constexpr size_t kMaxCertRepBytes = 256 * 1024;  // pkcs7's default message limit

    // Starts the exchange. False (and nothing to wait for) if no connection could even be started.
    bool start(UpstreamEndpoint& endpoint, size_t index, ByteBuffer&& request, AnswerUse use,
               UpstreamResponseSink& sink);
    // may_discard: a server error here may be dropped, because another upstream can be asked.
    HeadAction on_head(const http::HttpResponse& head, bool may_discard);
    // True: `data` goes on to the device.
    bool on_body(std::string_view data);
    // The exchange completed: its connection goes back to the endpoint.
    void complete();
    // The exchange failed (its connection closed itself).
    void failed() { end(); }
    // The request went away: the connection is closed, never reused.
    void abandon();

    // Between requests: frees the kept body (an idle keep-alive connection should cost little).
    void reset();

    bool in_flight() const { return exchange_ != nullptr; }
    UpstreamEndpoint& endpoint() const { return *endpoint_; }
    size_t index() const { return index_; }
    AnswerUse use() const { return use_; }
    int status() const { return status_; }
    bool discarded() const { return state_ == State::discarding; }
    // Whether body() is the answer's body: a 200's that fit its limit, or a held answer (cut at its limit).
    bool kept() const { return state_ == State::keeping_ok || state_ == State::keeping_all; }
    std::string& body() { return body_; }
    const std::string& content_type() const { return content_type_; }

private:
    enum class State {
        idle,  // no exchange (before start, after the end)
        awaiting_head,
        streaming,    // nothing kept (not a 200, or its body outgrew the limit)
        keeping_ok,   // a 200 whose body is kept (streamed too, unless probed)
        keeping_all,  // a held answer of any status
        discarding,   // a server error dropped for a retry elsewhere
    };
    void end();

    UpstreamEndpoint* endpoint_ = nullptr;
    UpstreamExchange* exchange_ = nullptr;
    size_t index_ = 0;
    AnswerUse use_ = AnswerUse::stream;
    State state_ = State::idle;
    int status_ = 0;
    std::string body_;
    std::string content_type_;
};

}  // namespace scepproxy::proxy
