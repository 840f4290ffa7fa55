// RequestHandler: what a listener does with each complete request an HttpConnection has read (SCEP, admin, metrics).
#pragma once

#include <string_view>

#include "proxy/http/http_request_parser.h"

namespace scepproxy::proxy {

class HttpConnection;

// A complete request. The views stay valid until the response is finished or aborted
// (the connection reads nothing more while a request is in flight).
struct IncomingRequest {
    const http::HttpRequest& head;
    std::string_view body;
};

// One handler per connection; it may keep per-request state between on_request and its answer.
class RequestHandler {
public:
    virtual ~RequestHandler() = default;
    // Answer through the connection (respond_text, respond, or begin_response/send_body/end_response),
    // now or later on the same thread.
    virtual void on_request(HttpConnection& connection, const IncomingRequest& request) = 0;
    // The connection is closing while a request is in flight: release everything, answer nothing.
    virtual void on_abort() = 0;
};

}  // namespace scepproxy::proxy
