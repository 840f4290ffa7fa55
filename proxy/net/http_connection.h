// HttpConnection: one inbound HTTP/1.1 connection — reading, limits, deadlines, keep-alive, pipelining, writing.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/net/byte_buffer.h"
#include "proxy/net/connection_host.h"
#include "proxy/http/http_request_parser.h"
#include "proxy/net/request_handler.h"
#include "proxy/net/response_channel.h"
#include "proxy/net/response_writer.h"
#include "proxy/net/socket_address.h"
#include "proxy/net/transport.h"

struct event;

namespace scepproxy::proxy {

class HttpConnection final : public ResponseChannel {
public:
    HttpConnection(ConnectionHost& host, std::string_view listener_name, std::unique_ptr<Transport> transport,
                   const SocketAddress& peer, std::unique_ptr<RequestHandler> handler);
    ~HttpConnection();
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;

    void start();
    void on_drain();  // the host is shutting down: close when idle, else after this response
    // The host's buffer budget has room again (after wait_for_buffer_budget): read on.
    void on_buffer_budget();
    size_t slot() const { return slot_; }
    void set_slot(size_t slot) { slot_ = slot; }

    // --- ResponseChannel: answering the request in flight (from the handler, on the host's thread) ---
    void respond_text(int status, std::string_view reason, std::string_view body, bool close_after = false,
                      std::string_view extra_header_lines = {}) override;
    void respond(int status, std::string_view content_type, std::string_view body, std::string_view reason,
                 std::string_view extra_header_lines = {}) override;
    void begin_response(int status, std::string_view content_type, std::optional<uint64_t> content_length) override;
    void send_body(std::string_view data) override;
    void end_response(int status, std::string_view reason) override;
    void abort_response(int status, std::string_view reason) override;
    bool response_started() const override { return response_started_; }
    RequestLogFields& log_fields() override { return log_fields_; }
    const std::string& peer() const { return peer_text_; }
    // Bytes of request buffer storage this connection holds (its input and a chunked body's decoding).
    size_t buffered_capacity() const;

private:
    enum class State {
        reading_head,  // waiting for (the rest of) a request head; idle between requests
        reading_body,
        handling,   // the handler has the request
        finishing,  // the answer is complete in out_, being flushed
        lingering,  // answer sent on a closing connection: discarding input until EOF
        closed,
    };
    enum class TimerPurpose { none, idle, header, body, write, linger };

    static void on_io(int fd, short what, void* arg);
    static void on_timer(int fd, short what, void* arg);
    void handle_io(short what);
    void handle_timer();
    struct ReadSpace {
        char* data = nullptr;  // null: no room in the budget now (waiting for it)
        size_t size = 0;
        bool first_block = false;  // a request's first bytes, read aside (see space_to_read)
    };

    enum class ReadStop {
        drained,      // nothing more to read now (or the client is done sending)
        parse_first,  // a head to parse before the buffer may grow
        limit,        // the buffer is as full as a request may make it
        budget,       // no room in the host's budget: waiting for it
        closed,       // an error or a reset: the connection is closed
    };

    void read_input();
    ReadStop read_available();
    bool read_on_after_parse(ReadStop stop) const;
    ReadSpace space_to_read(size_t limit);
    void commit_read(const ReadSpace& space, size_t bytes);
    void give_back_read_space(const ReadSpace& space);
    bool make_room_to_decode(size_t input_bytes);
    bool charge_buffer(size_t bytes, bool request_start = false);
    void settle_buffer_charge();
    void release_buffers();
    void process_input();
    void process_buffered_requests();
    bool parse_head();
    bool read_body();
    void hand_to_handler();
    void reject(const http::HttpError& error);
    ConnectionHeader connection_header();
    void finish_request(int status, std::string_view reason);
    void log_request(int status, std::string_view reason);
    void flush_output();
    void after_flush();
    void reset_for_next_request();
    void begin_close(bool graceful);
    void answer_deadline(std::string_view reason);
    void close_for_deadline(std::string_view reason);
    void close_now();
    void arm_timer(TimerPurpose purpose, int64_t milliseconds);
    void disarm_timer();

    ConnectionHost& host_;
    std::string_view listener_name_;
    std::unique_ptr<Transport> transport_;
    std::string peer_text_;
    std::unique_ptr<RequestHandler> handler_;
    size_t slot_ = 0;
    State state_ = State::reading_head;
    event* io_event_ = nullptr;
    event* timer_event_ = nullptr;
    TimerPurpose timer_purpose_ = TimerPurpose::none;
    bool read_pending_ = false;  // readable, but we stopped reading while busy (edge-triggered)
    bool write_blocked_ = false;
    bool close_after_response_ = false;
    bool fin_announced_ = false;  // EV_CLOSED came: read on to the EOF, whatever a read returns
    bool input_closed_ = false;   // the client half-closed: no more bytes will come (EOF read)
    bool processing_input_ = false;

    ByteBuffer in_;
    ByteBuffer out_;
    http::HttpRequestParser parser_;
    int64_t linger_ms_;  // how long a closing connection discards input; shorter after a 408
    // The request body: a Content-Length body where it lies in in_ (which doesn't change while the
    // request is handled), a chunked one in decoded_body_.
    std::string_view body_;
    std::string decoded_body_;     // grows with the decoded bytes (amortized), at most max_body_bytes_
    const size_t max_body_bytes_;  // the parser's limit
    // Bytes of request buffer taken from the host's budget (what in_ and decoded_body_ hold, give or
    // take an allocator's rounding); given back as they shrink, all of it at the close.
    size_t charged_ = 0;
    uint64_t body_consumed_ = 0;  // input bytes after the head that were body (framing included)
    size_t head_length_ = 0;
    size_t head_parsed_size_ = 0;      // in_'s size when the parser last needed more of the head
    const char* head_base_ = nullptr;  // where in_ was when the head was parsed (its views point there)
    bool keep_alive_ = true;
    bool http10_ = false;

    int64_t accepted_ns_ = 0;
    uint64_t requests_ = 0;  // answered on this connection (for the log)
    int64_t request_start_ns_ = 0;
    int64_t body_deadline_ns_ = 0;  // when the body must be complete (monotonic)
    RequestLogFields log_fields_;
    uint64_t response_body_bytes_ = 0;
    bool response_started_ = false;
    ResponseFraming response_framing_ = ResponseFraming::content_length;
};

}  // namespace scepproxy::proxy
