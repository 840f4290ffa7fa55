// Invariant violations (base/invariant.h) as the daemon reports them: the invariant_violated log line and its metric.
#pragma once

#include <prometheus/metric_family.h>

namespace scepproxy::proxy {

// Installs the reporter that logs `invariant_violated` (what, file, line, count): once at start-up.
void log_invariant_violations();

// scepproxy_invariant_violations_total, read from base's count when the metrics are rendered.
prometheus::MetricFamily invariant_violations_metric();

}  // namespace scepproxy::proxy
