// Response serialisation: status line, a minimal fixed header set, chunk framing.
#include "proxy/net/response_writer.h"

#include <charconv>

namespace scepproxy::proxy {
namespace {

void append_number(ByteBuffer& out, uint64_t value, int base = 10) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value, base).ptr;
    out.append(std::string_view(digits, static_cast<size_t>(end - digits)));
}

void append_status_line(ByteBuffer& out, int status) {
    out.append("HTTP/1.1 ");
    append_number(out, static_cast<uint64_t>(status));
    out.append(" ");
    out.append(reason_phrase(status));
    out.append("\r\n");
}

// Ends the head.
void append_connection_and_end(ByteBuffer& out, ConnectionHeader connection) {
    if (connection == ConnectionHeader::close) out.append("Connection: close\r\n");
    if (connection == ConnectionHeader::keep_alive) out.append("Connection: keep-alive\r\n");
    out.append("\r\n");
}

}  // namespace

const char* reason_phrase(int status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 417: return "Expectation Failed";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Status";
    }
}

void append_response_head(ByteBuffer& out, int status, std::string_view content_type, ResponseFraming framing,
                          uint64_t content_length, ConnectionHeader connection, std::string_view extra_header_lines) {
    append_status_line(out, status);
    if (!content_type.empty()) {
        out.append("Content-Type: ");
        out.append(content_type);
        out.append("\r\n");
    }
    if (framing == ResponseFraming::content_length) {
        out.append("Content-Length: ");
        append_number(out, content_length);
        out.append("\r\n");
    } else if (framing == ResponseFraming::chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    out.append(extra_header_lines);
    append_connection_and_end(out, connection);
}

void append_chunk(ByteBuffer& out, std::string_view data) {
    if (data.empty()) return;  // an empty chunk would end the body
    append_number(out, data.size(), 16);
    out.append("\r\n");
    out.append(data);
    out.append("\r\n");
}

void append_last_chunk(ByteBuffer& out) { out.append("0\r\n\r\n"); }

void append_text_response(ByteBuffer& out, int status, std::string_view body, ConnectionHeader connection,
                          std::string_view extra_header_lines) {
    append_status_line(out, status);
    out.append("Content-Type: text/plain\r\nContent-Length: ");
    append_number(out, body.size() + 1);
    out.append("\r\n");
    out.append(extra_header_lines);
    append_connection_and_end(out, connection);
    out.append(body);
    out.append("\n");
}

}  // namespace scepproxy::proxy
