// Writes the per-request access log line.
#include "proxy/access_log.h"

#include "proxy/log.h"

namespace scepproxy::proxy {

void write_access_log(const AccessLogRecord& record) {
    LogLine line(LogLevel::info, "request");
    line.field("listener", record.listener)
        .field("client", record.client)
        .field("token", record.token_id.empty() ? std::string_view("-") : record.token_id)
        .field("profile", record.profile.empty() ? std::string_view("-") : record.profile)
        .field("op", record.operation.empty() ? std::string_view("-") : record.operation)
        .field("status", record.status)
        .field("reason", record.reason)
        .field("bytes_in", static_cast<unsigned long long>(record.bytes_in))
        .field("bytes_out", static_cast<unsigned long long>(record.bytes_out));
    if (record.upstream_ms >= 0)
        line.field_ms("upstream_ms", record.upstream_ms);
    else
        line.field("upstream_ms", "-");
    line.field_ms("total_ms", record.total_ms).emit();
}

}  // namespace scepproxy::proxy
