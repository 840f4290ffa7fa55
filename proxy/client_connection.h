// ClientConnection: one device's HTTP/1.1 connection — read, parse, check the token, forward, answer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "proxy/byte_buffer.h"
#include "proxy/http/http_request_parser.h"
#include "proxy/response_writer.h"
#include "proxy/scep_route.h"
#include "proxy/socket_address.h"
#include "proxy/transport.h"
#include "proxy/upstream_connection.h"
#include "token/enrollment_store.h"

struct event;

namespace scepproxy::proxy {

class Worker;
struct CachedAnswer;
struct WorkerProfile;

class ClientConnection final : public token::AccessCallback, public UpstreamResponseSink {
public:
    ClientConnection(Worker& worker, int fd, const SocketAddress& peer);
    ~ClientConnection();
    ClientConnection(const ClientConnection&) = delete;
    ClientConnection& operator=(const ClientConnection&) = delete;

    void start();
    void on_drain();  // the worker is shutting down
    size_t slot() const { return slot_; }
    void set_slot(size_t slot) { slot_ = slot; }

    void on_access_decided(const token::AccessDecision& decision) override;
    void on_upstream_head(const http::HttpResponse& head) override;
    void on_upstream_body(std::string_view data) override;
    void on_upstream_complete() override;
    void on_upstream_failed(UpstreamFailure failure, bool request_bytes_sent, bool response_started) override;

private:
    enum class State {
        reading_head,     // waiting for (the rest of) a request head; idle between requests
        reading_body,
        checking_access,  // the store is deciding
        forwarding,       // an upstream request is in flight
        finishing,        // response complete in out_, being flushed
        lingering,        // response sent on a closing connection: discarding input until EOF
        closed,
    };
    enum class TimerPurpose { none, idle, header, body, write, linger };

    // Where the current request's parts sit in in_ (offsets survive buffer growth).
    struct RequestInfo {
        http::HttpMethod method = http::HttpMethod::other;
        size_t path_offset = 0, path_length = 0;
        size_t query_offset = 0, query_length = 0;
        size_t head_length = 0;
        bool keep_alive = true;
        bool http10 = false;
    };

    static void on_io(int fd, short what, void* arg);
    static void on_timer(int fd, short what, void* arg);
    void handle_io(short what);
    void handle_timer();
    void read_input();
    void process_input();
    void process_buffered_requests();
    bool parse_head();
    bool read_body();
    void dispatch();
    void forward(WorkerProfile& profile);
    void send_upstream();
    bool start_upstream_attempt();
    void respond_cached(const CachedAnswer& answer);
    ConnectionHeader connection_header();
    void respond_local(int status, std::string_view reason, std::string_view body, bool close_after = false);
    void finish_request(int status, std::string_view reason);
    void log_request(int status, std::string_view reason);
    void flush_output();
    void after_flush();
    void reset_for_next_request();
    void begin_close(bool graceful);
    void close_now();
    void arm_timer(TimerPurpose purpose, int64_t milliseconds);
    void disarm_timer();
    double elapsed_ms(int64_t since_ns) const;
    std::string_view request_path() const { return {in_.data() + request_.path_offset, request_.path_length}; }
    std::string_view request_query() const { return {in_.data() + request_.query_offset, request_.query_length}; }

    Worker& worker_;
    PlainSocketTransport transport_;
    std::string peer_text_;
    size_t slot_ = 0;
    State state_ = State::reading_head;
    event* io_event_ = nullptr;
    event* timer_event_ = nullptr;
    TimerPurpose timer_purpose_ = TimerPurpose::none;
    bool read_pending_ = false;     // readable, but we stopped reading while busy (edge-triggered)
    bool write_blocked_ = false;
    bool close_after_response_ = false;
    bool processing_input_ = false;

    ByteBuffer in_;
    ByteBuffer out_;
    http::HttpRequestParser parser_;
    std::string body_;              // the request body, decoded
    uint64_t body_consumed_ = 0;    // input bytes after the head that belonged to the body (framing included)
    RequestInfo request_;

    // Per-request state for the access log and the upstream exchange.
    ScepRoute route_;
    std::string token_id_;
    std::string profile_name_;
    int64_t request_start_ns_ = 0;
    int64_t upstream_start_ns_ = 0;
    double upstream_ms_ = -1;
    uint64_t response_body_bytes_ = 0;
    WorkerProfile* profile_ = nullptr;
    UpstreamConnection* upstream_ = nullptr;
    UpstreamPool* upstream_pool_ = nullptr;
    unsigned upstream_attempts_ = 0;
    bool response_chunked_ = false;
    bool response_head_sent_ = false;  // the device already has (part of) the upstream's answer
    int upstream_status_ = 0;
    bool probing_caps_ = false;        // asking the upstream's GetCACaps before forwarding another operation
    bool capture_for_cache_ = false;   // keep this GetCACert/GetCACaps answer in the profile's cache
    std::string captured_;
    std::string captured_content_type_;
    bool awaiting_access_ = false;
};

}  // namespace scepproxy::proxy
