// The invariant_violated log line and scepproxy_invariant_violations_total, from base's count and reporter hook.
#include "proxy/telemetry/invariant_reporting.h"

#include "base/invariant.h"
#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {
namespace {

// `count`: this site's violations so far (base reports the 1st, 2nd, 4th, ... of each site).
void log_violation(const char* what, const char* file, int line, uint64_t violations_here) {
    LogLine(LogLevel::error, "invariant_violated")
        .field("what", what)
        .field("file", file)
        .field("line", line)
        .field("count", static_cast<unsigned long long>(violations_here))
        .emit();
}

}  // namespace

void log_invariant_violations() { set_invariant_reporter(&log_violation); }

prometheus::MetricFamily invariant_violations_metric() {
    // Not a registered Counter: base/ keeps the one count (it has no Prometheus), read here as it is.
    prometheus::MetricFamily family;
    family.name = "scepproxy_invariant_violations_total";
    family.help = "Violated internal invariants (a bug in the proxy: each is logged as invariant_violated)";
    family.type = prometheus::MetricType::Counter;
    prometheus::ClientMetric metric;
    metric.counter.value = static_cast<double>(invariant_violations());
    family.metric.push_back(std::move(metric));
    return family;
}

}  // namespace scepproxy::proxy
