// ConfigReload (SIGHUP): reads the file again, keeps what only a restart may change, validates, builds the next ServingConfig.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/challenge/challenge_source.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/server/serving_config.h"

namespace scepproxy::proxy {

struct ReloadResult {
    std::shared_ptr<const ServingConfig> serving;  // null: rejected, the running configuration stays
    std::vector<std::string> errors;               // why it was rejected: "FILE:LINE:COL: key: message"
    std::vector<std::string> kept_keys;            // changed, but only a restart applies them: running values kept
};

// Everything `scepproxy check` checks, plus what serving needs (TLS material read and matched,
// secrets read, upstream host names resolved). Nothing running is touched.
ReloadResult reload_config(const std::string& path, const conf::Config& running, ProxyMetrics& metrics,
                           challenge::FetchObserver observer);

// The keys (as config_keys() names them) whose values differ and can't change at runtime;
// `next` gets the running values of those. Exposed for unit tests.
std::vector<std::string> keep_restart_only_keys(const conf::Config& running, conf::Config& next);

}  // namespace scepproxy::proxy
