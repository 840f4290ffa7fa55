// AccessLogRecord: the one structured line written per request (no token, no device id, no secrets).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace scepproxy::proxy {

struct AccessLogRecord {
    std::string_view listener;
    std::string_view client;        // peer "ip:port"
    std::string_view token_id;      // 8 hex digits of the token's SHA-256, or "-"
    std::string_view profile;       // or "-"
    std::string_view operation;     // or "-"
    std::string_view message_type;  // PKIOperation's messageType, or "-"
    std::string_view pki_status;    // the upstream CertRep's pkiStatus, or "-"
    int status = 0;
    std::string_view reason;  // short reason code, "ok" when forwarded
    uint64_t bytes_in = 0;    // request body bytes
    uint64_t bytes_out = 0;   // response body bytes
    double upstream_ms = -1;  // < 0: no upstream involved
    double total_ms = 0;
};

void write_access_log(const AccessLogRecord& record);

// A connection the proxy closed without an answer (a deadline with nothing to answer, or a limit):
// one `event=connection_closed` line in the access log.
void write_connection_closed_log(std::string_view listener, std::string_view client, std::string_view reason,
                                 uint64_t requests, double connection_ms);

}  // namespace scepproxy::proxy
