// Builds the HTTP/1.1 request sent upstream from scratch (never the client's raw bytes), Content-Length framed.
#pragma once

#include <string_view>

#include "conf/config.h"
#include "proxy/byte_buffer.h"
#include "proxy/scep_route.h"

namespace scepproxy::proxy {

// GET {path}?operation=OP[&message=M] or, when `body` is given, POST with Content-Length
// (IIS rejects chunked request bodies). `message` is forwarded as received (already a clean query value).
void build_upstream_request(ByteBuffer& out, const conf::UpstreamConfig& upstream, const ScepRoute& route,
                            const std::string_view* body);

}  // namespace scepproxy::proxy
