// Upstream request builder: a fixed, minimal header set, so nothing a client sent leaks or smuggles upstream.
#include "proxy/upstream/upstream_request.h"

#include <charconv>

namespace scepproxy::proxy {

void build_upstream_request(ByteBuffer& out, const conf::UpstreamConfig& upstream, std::string_view operation,
                            std::string_view message, const std::string_view* body) {
    out.append(body ? "POST " : "GET ");
    out.append(upstream.path);
    out.append("?operation=");  // the config loader rejects upstream URLs with a query
    out.append(operation);
    if (!message.empty() && !body) {
        out.append("&message=");
        out.append(message);
    }
    out.append(" HTTP/1.1\r\nHost: ");
    out.append(upstream.host_header);
    out.append("\r\nUser-Agent: scepproxy\r\n");
    if (body) {
        char digits[24];
        const auto end = std::to_chars(digits, digits + sizeof digits, body->size()).ptr;
        out.append("Content-Type: application/x-pki-message\r\nContent-Length: ");
        out.append(std::string_view(digits, static_cast<size_t>(end - digits)));
        out.append("\r\n\r\n");
        out.append(*body);
    } else {
        out.append("\r\n");
    }
}

}  // namespace scepproxy::proxy
