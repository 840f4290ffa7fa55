// MetricsHandler: serves the registry's text exposition and a liveness answer.
#include "proxy/server/metrics_handler.h"

#include "proxy/net/http_connection.h"

namespace scepproxy::proxy {

void MetricsHandler::on_request(HttpConnection& connection, const IncomingRequest& request) {
    const std::string_view path = request.head.path;
    if (path != "/metrics" && path != "/healthz") {
        connection.respond_text(404, "not_found", "not_found");
        return;
    }
    if (request.head.method != http::HttpMethod::get) {
        connection.respond_text(405, "method_not_allowed", "method_not_allowed");
        return;
    }
    if (path == "/healthz") {
        connection.respond_text(200, "ok", "ok");
        return;
    }
    const std::string text = metrics_.render();
    connection.respond(200, "text/plain; version=0.0.4; charset=utf-8", text, "ok");
}

}  // namespace scepproxy::proxy
