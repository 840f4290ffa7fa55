// ConfigReload: the restart-only keys (listeners, workers, store, shared limits, log format) and building a reloaded ServingConfig.
#include "proxy/server/config_reload.h"

#include "proxy/server/config_file.h"

namespace scepproxy::proxy {

std::vector<std::string> keep_restart_only_keys(const conf::Config& running, conf::Config& next) {
    std::vector<std::string> kept;
    // Each listener's socket, the worker threads and the store are made once, at start-up.
    if (next.workers != running.workers) {
        kept.push_back("workers");
        next.workers = running.workers;
    }
    if (!(next.scep.listen == running.scep.listen)) {
        kept.push_back("scep.listen");
        next.scep.listen = running.scep.listen;
    }
    if (next.admin.enabled != running.admin.enabled) {
        kept.push_back("admin");
        next.admin = running.admin;  // its other keys come with it: the running listener needs them
    } else if (!(next.admin.listen == running.admin.listen)) {
        kept.push_back("admin.listen");
        next.admin.listen = running.admin.listen;
    }
    if (next.metrics.enabled != running.metrics.enabled) {
        kept.push_back("metrics");
        next.metrics = running.metrics;
    } else if (!(next.metrics.listen == running.metrics.listen)) {
        kept.push_back("metrics.listen");
        next.metrics.listen = running.metrics.listen;
    }
    if (!(next.store == running.store)) {
        kept.push_back("store");
        next.store = running.store;
    }
    // The connection budget and the per-client/per-token tables are sized once and shared by the workers.
    if (next.limits.max_connections != running.limits.max_connections) {
        kept.push_back("limits.max_connections");
        next.limits.max_connections = running.limits.max_connections;
    }
    if (!(next.limits.per_client == running.limits.per_client)) {
        kept.push_back("limits.per_client");
        next.limits.per_client = running.limits.per_client;
    }
    if (!(next.limits.per_token == running.limits.per_token)) {
        kept.push_back("limits.per_token");
        next.limits.per_token = running.limits.per_token;
    }
    // Every thread reads the log format without a lock.
    if (next.log.format != running.log.format) {
        kept.push_back("log.format");
        next.log.format = running.log.format;
    }
    return kept;
}

ReloadResult reload_config(const std::string& path, const conf::Config& running, ProxyMetrics& metrics,
                           challenge::FetchObserver observer) {
    ReloadResult result;
    ConfigFile file = read_config_file(path, true);
    if (!file.ok()) {
        result.errors = std::move(file.errors);
        return result;
    }
    auto next = std::make_shared<conf::Config>(*file.config);
    result.kept_keys = keep_restart_only_keys(running, *next);
    file.config = next;
    result.serving = make_serving_config(file, metrics, std::move(observer), &result.errors);
    return result;
}

}  // namespace scepproxy::proxy
