// Builds the HTTP/1.1 request sent upstream from scratch (never the client's raw bytes), Content-Length framed.
#pragma once

#include <string_view>

#include "conf/config.h"
#include "proxy/net/byte_buffer.h"

namespace scepproxy::proxy {

// GET {path}?operation=OP[&message=M], or, when `body` is given, POST {path}?operation=OP with
// Content-Length (IIS rejects chunked request bodies). `message` must already be a clean
// query value (percent-encoded); empty means no message parameter.
void build_upstream_request(ByteBuffer& out, const conf::UpstreamConfig& upstream, std::string_view operation,
                            std::string_view message, const std::string_view* body);

}  // namespace scepproxy::proxy
