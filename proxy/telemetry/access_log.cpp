// Writes the per-request access log line.
#include "proxy/telemetry/access_log.h"

#include "proxy/telemetry/access_log_batch.h"
#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {

namespace {
std::string_view or_dash(std::string_view value) { return value.empty() ? std::string_view("-") : value; }
}  // namespace

void write_access_log(const AccessLogRecord& record) {
    LogLine line(LogLevel::info, "request");
    line.field("listener", record.listener)
        .field("client", record.client)
        .field("token", or_dash(record.token_id))
        .field("profile", or_dash(record.profile))
        .field("op", or_dash(record.operation))
        .field("msg_type", or_dash(record.message_type))
        .field("status", record.status)
        .field("reason", record.reason)
        .field("pki_status", or_dash(record.pki_status))
        .field("bytes_in", static_cast<unsigned long long>(record.bytes_in))
        .field("bytes_out", static_cast<unsigned long long>(record.bytes_out));
    if (record.upstream_ms >= 0)
        line.field_ms("upstream_ms", record.upstream_ms);
    else
        line.field("upstream_ms", "-");
    write_access_line(line.field_ms("total_ms", record.total_ms).take());
}

void write_connection_closed_log(std::string_view listener, std::string_view client, std::string_view reason,
                                 uint64_t requests, double connection_ms) {
    write_access_line(LogLine(LogLevel::info, "connection_closed")
                          .field("listener", listener)
                          .field("client", client)
                          .field("reason", reason)
                          .field("requests", static_cast<unsigned long long>(requests))
                          .field_ms("connection_ms", connection_ms)
                          .take());
}

}  // namespace scepproxy::proxy
