// Tests for ConfigReload: which changed keys a reload keeps at their running values, and what it applies.
#include "proxy/server/config_reload.h"

#include <catch2/catch.hpp>

namespace scepproxy::proxy {
namespace {

conf::Config running_config() {
    conf::Config config;
    config.workers = 4;
    config.scep.listen = {"0.0.0.0", 8080, "0.0.0.0:8080"};
    config.admin.enabled = true;
    config.admin.bearer_token_file = "/etc/scepproxy/admin.token";
    config.metrics.enabled = true;
    config.limits.idle_timeout = std::chrono::seconds(60);
    return config;
}

TEST_CASE("a reload that changes only runtime keys keeps nothing", "[proxy][reload]") {
    const conf::Config running = running_config();
    conf::Config next = running;
    next.limits.idle_timeout = std::chrono::seconds(5);
    next.log.access_log = false;
    next.scep.public_url = "https://new.example.com";
    CHECK(keep_restart_only_keys(running, next).empty());
    CHECK(next.limits.idle_timeout == std::chrono::seconds(5));
    CHECK_FALSE(next.log.access_log);
    CHECK(next.scep.public_url == "https://new.example.com");
}

TEST_CASE("restart-only keys keep their running values and are named", "[proxy][reload]") {
    const conf::Config running = running_config();
    conf::Config next = running;
    next.workers = 8;
    next.scep.listen = {"0.0.0.0", 8443, "0.0.0.0:8443"};
    next.admin.listen = {"127.0.0.1", 9444, "127.0.0.1:9444"};
    next.metrics.listen = {"127.0.0.1", 9101, "127.0.0.1:9101"};
    next.store.cache_ttl = std::chrono::seconds(1);
    next.log.format = conf::LogFormat::json;
    next.limits.max_connections = 10;
    next.limits.per_client.max_connections = 3;
    next.limits.per_token.requests_per_minute = 60;
    next.limits.idle_timeout = std::chrono::seconds(5);  // applied
    const auto kept = keep_restart_only_keys(running, next);
    CHECK(kept == std::vector<std::string>{"workers", "scep.listen", "admin.listen", "metrics.listen", "store",
                                           "limits.max_connections", "limits.per_client", "limits.per_token",
                                           "log.format"});
    CHECK(next.limits.max_connections == running.limits.max_connections);
    CHECK(next.limits.per_client == running.limits.per_client);
    CHECK(next.limits.per_token == running.limits.per_token);
    CHECK(next.workers == 4);
    CHECK(next.scep.listen == running.scep.listen);
    CHECK(next.admin.listen == running.admin.listen);
    CHECK(next.metrics.listen == running.metrics.listen);
    CHECK(next.store == running.store);
    CHECK(next.log.format == conf::LogFormat::text);
    CHECK(next.limits.idle_timeout == std::chrono::seconds(5));
}

TEST_CASE("removing the admin or metrics section keeps the running listener with its settings", "[proxy][reload]") {
    const conf::Config running = running_config();
    conf::Config next = running;
    next.admin = conf::AdminConfig{};  // section gone: disabled, no bearer token file
    next.metrics = conf::MetricsConfig{};
    const auto kept = keep_restart_only_keys(running, next);
    CHECK(kept == std::vector<std::string>{"admin", "metrics"});
    CHECK(next.admin.enabled);
    CHECK(next.admin.bearer_token_file == "/etc/scepproxy/admin.token");
    CHECK(next.metrics.enabled);
}

}  // namespace
}  // namespace scepproxy::proxy
