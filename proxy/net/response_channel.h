// ResponseChannel: what a request handler may do with the connection it answers on (a narrow interface, faked in tests).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace scepproxy::proxy {

// What the handler tells the access log about the request it handled (never a token or device id).
struct RequestLogFields {
    std::string token_id;  // 8 hex digits of the token hash
    std::string profile;
    std::string_view operation;     // static strings only
    std::string_view message_type;  // PKIOperation: the pkiMessage's messageType (static strings only)
    std::string_view pki_status;    // PKIOperation: the upstream CertRep's pkiStatus (static strings only)
    double upstream_ms = -1;        // < 0: no upstream involved
};

// Each answering call may finish the request at once and let the connection hand the handler its
// next (pipelined) request from inside the call: a handler forgets its request before answering.
class ResponseChannel {
public:
    // A short text/plain reason code; `close_after` ends the connection after it.
    // extra_header_lines: whole lines ending in CRLF (Retry-After).
    virtual void respond_text(int status, std::string_view reason, std::string_view body, bool close_after = false,
                              std::string_view extra_header_lines = {}) = 0;
    // A complete answer with a known body; extra_header_lines: whole lines ending in CRLF (Allow, WWW-Authenticate).
    virtual void respond(int status, std::string_view content_type, std::string_view body, std::string_view reason,
                         std::string_view extra_header_lines = {}) = 0;
    // A streamed answer: `content_length` empty when unknown (chunked, or close-delimited for HTTP/1.0).
    virtual void begin_response(int status, std::string_view content_type, std::optional<uint64_t> content_length) = 0;
    virtual void send_body(std::string_view data) = 0;
    virtual void end_response(int status, std::string_view reason) = 0;
    // The answer can't be completed (upstream failed mid-body): log and close; the client sees a cut.
    virtual void abort_response(int status, std::string_view reason) = 0;
    virtual bool response_started() const = 0;
    virtual RequestLogFields& log_fields() = 0;

protected:
    ~ResponseChannel() = default;
};

}  // namespace scepproxy::proxy
