// Serialises response heads and the proxy's own short text/plain answers into an output buffer.
#pragma once

#include <cstdint>
#include <string_view>

#include "proxy/net/byte_buffer.h"

namespace scepproxy::proxy {

enum class ConnectionHeader { none, keep_alive, close };

const char* reason_phrase(int status);

enum class ResponseFraming {
    content_length,
    chunked,      // the caller frames the body with append_chunk / append_last_chunk
    until_close,  // HTTP/1.0 peers: the body ends when the connection closes
};

// extra_header_lines: whole lines, each ending in CRLF (e.g. "Allow: GET, POST\r\n"); never client data.
void append_response_head(ByteBuffer& out, int status, std::string_view content_type, ResponseFraming framing,
                          uint64_t content_length, ConnectionHeader connection,
                          std::string_view extra_header_lines = {});
void append_chunk(ByteBuffer& out, std::string_view data);
void append_last_chunk(ByteBuffer& out);

// A complete local answer: `body` is a short reason code, sent with a trailing newline.
void append_text_response(ByteBuffer& out, int status, std::string_view body, ConnectionHeader connection,
                          std::string_view extra_header_lines = {});

}  // namespace scepproxy::proxy
