// MetricsHandler: the metrics listener's requests — GET /metrics (Prometheus text format) and GET /healthz.
#pragma once

#include "proxy/telemetry/metrics.h"
#include "proxy/net/request_handler.h"

namespace scepproxy::proxy {

class MetricsHandler final : public RequestHandler {
public:
    explicit MetricsHandler(const ProxyMetrics& metrics) : metrics_(metrics) {}
    void on_request(HttpConnection& connection, const IncomingRequest& request) override;
    void on_abort() override {}

private:
    const ProxyMetrics& metrics_;
};

}  // namespace scepproxy::proxy
