// Server: start-up (store, upstream resolution, one SO_REUSEPORT socket per worker), signals, shutdown.
#include "proxy/server/server.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "conf/security_warnings.h"
#include "proxy/challenge/challenge_source.h"
#include "proxy/limits/client_connection_counter.h"
#include "proxy/limits/connection_budget.h"
#include "proxy/server/config_reload.h"
#include "proxy/server/control_loop.h"
#include "proxy/limits/descriptor_limit.h"
#include "proxy/telemetry/invariant_reporting.h"
#include "proxy/telemetry/log.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/limits/rate_limiter.h"
#include "proxy/server/serving_config.h"
#include "proxy/server/service_notifier.h"
#include "proxy/net/socket_address.h"
#include "proxy/server/worker.h"
#include "token/store_registry.h"

namespace scepproxy::proxy {
namespace {

constexpr int kListenBacklog = 4096;
constexpr int kPurgeIntervalSeconds = 300;
constexpr std::chrono::milliseconds kReloadSwitchTimeout{10000};  // a loop switches between two callbacks
constexpr int64_t kExpiredTokenRetentionSeconds = 24 * 3600;      // `token show` still explains a recent expiry

// One listening socket per worker on the same address; with port 0 the first picks the port.
bool open_worker_sockets(const conf::ListenAddress& listen, unsigned count, std::vector<int>* fds, std::string* bound,
                         std::string* error) {
    auto addresses = resolve_tcp_address(listen.host, listen.port, error);
    if (addresses.empty()) return false;
    SocketAddress address = addresses.front();
    for (unsigned i = 0; i < count; ++i) {
        const int fd = open_listening_socket(address, true, kListenBacklog, error);
        if (fd < 0) {
            for (int open_fd : *fds) ::close(open_fd);
            fds->clear();
            return false;
        }
        if (i == 0) {
            address.set_port(local_address_of(fd).port());
            *bound = address.to_string();
        }
        fds->push_back(fd);
    }
    return true;
}

void purge_expired_tokens(token::EnrollmentStore& store) {
    const auto purged = store.purge_expired(unix_now() - kExpiredTokenRetentionSeconds);
    if (!purged.ok())
        LogLine(LogLevel::warn, "token_purge_failed").field("detail", purged.message).emit();
    else if (purged.value > 0)
        LogLine(LogLevel::info, "tokens_purged").field("count", static_cast<long long>(purged.value)).emit();
}

// Every mscep_admin fetch: one log line and one count, by outcome. Never the password.
void report_challenge_fetch(ProxyMetrics& metrics, const challenge::FetchReport& report) {
    metrics.count_challenge_fetch(report.profile, report.outcome);
    LogLine line(report.outcome == challenge::ChallengeOutcome::ok ? LogLevel::info : LogLevel::warn,
                 "challenge_fetch");
    line.field("profile", report.profile).field("outcome", challenge::to_string(report.outcome));
    if (report.http_status) line.field("http_status", report.http_status);
    line.field_ms("fetch_ms", report.seconds * 1000);
    if (!report.detail.empty()) line.field("detail", report.detail);
    line.emit();
}

// Settings that work but weaken security (conf/security_warnings.h): one warn line each, at start
// and after each reload, naming the key, what it exposes and what to do. `scepproxy check` prints
// the same with the key's position in the file.
void log_security_warnings(const conf::Config& config) {
    for (const auto& warning : conf::find_security_warnings(config))
        LogLine(LogLevel::warn, "insecure_setting").field("key", warning.key).field("detail", warning.message).emit();
}

// What the enrollment store reports: operations to the store metrics, events to the log.
class StoreReporter final : public token::StoreObserver {
public:
    StoreReporter(const StoreMetrics& metrics, std::string backend) : metrics_(metrics), backend_(std::move(backend)) {}

    void record(token::StoreOperation operation, token::StoreOutcome outcome, double seconds) override {
        metrics_.record(operation, outcome, seconds);
    }

    void report(const token::StoreEvent& event) override {
        LogLine line(event.level == token::StoreEvent::Level::warn ? LogLevel::warn : LogLevel::info, event.name);
        line.field("backend", backend_);
        if (!event.token_id.empty()) line.field("token", event.token_id);
        if (!event.detail.empty()) line.field("detail", event.detail);
        line.emit();
    }

private:
    const StoreMetrics& metrics_;
    const std::string backend_;
};

// Every client connection needs a descriptor (two while its request is upstream): say at start
// when the limit the process got can't carry limits.max_connections.
void raise_and_check_descriptor_limit(const conf::Config& config) {
    const DescriptorLimit limit = raise_descriptor_limit();
    if (!limit.error.empty()) LogLine(LogLevel::warn, "descriptor_limit_unchanged").field("detail", limit.error).emit();
    const uint64_t needed = descriptors_needed(config);
    LogLine(LogLevel::info, "descriptor_limit")
        .field("nofile", static_cast<unsigned long long>(limit.soft))
        .field("was", static_cast<unsigned long long>(limit.soft_before))
        .field("hard", static_cast<unsigned long long>(limit.hard))
        .emit();
    if (limit.soft < needed)
        LogLine(LogLevel::warn, "descriptor_limit_too_small")
            .field("nofile", static_cast<unsigned long long>(limit.soft))
            .field("needed", static_cast<unsigned long long>(needed))
            .field("max_connections", static_cast<unsigned long long>(config.limits.max_connections))
            .field("detail",
                   "max_connections client connections, one upstream connection each and the idle "
                   "upstream pools need more descriptors than RLIMIT_NOFILE allows: raise LimitNOFILE "
                   "(systemd) or ulimit -Hn, or lower limits.max_connections")
            .emit();
}

// How many loops have yet to switch to a reloaded configuration.
class LoopsSwitching {
public:
    explicit LoopsSwitching(size_t loops) : left_(loops) {}
    void one_done() {
        std::lock_guard lock(mutex_);
        if (left_ > 0 && --left_ == 0) all_done_.notify_all();
    }
    bool wait(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex_);
        return all_done_.wait_for(lock, timeout, [this] { return left_ == 0; });
    }

private:
    std::mutex mutex_;
    std::condition_variable all_done_;
    size_t left_;
};

// SIGHUP: the new configuration goes to every loop, which switches between requests; a rejected
// one changes nothing. Returns what serves from now on.
std::shared_ptr<const ServingConfig> reload(const std::string& path, std::shared_ptr<const ServingConfig> current,
                                            ProxyMetrics& metrics, const challenge::FetchObserver& observer,
                                            std::vector<std::unique_ptr<Worker>>& workers, ControlLoop& control) {
    LogLine(LogLevel::info, "config_reload_started").field("file", path).emit();
    ReloadResult result = reload_config(path, *current->config, metrics, observer);
    if (!result.serving) {
        metrics.count_config_reload(false);
        for (const auto& error : result.errors)
            LogLine(LogLevel::warn, "config_reload_failed").field("detail", error).emit();
        LogLine(LogLevel::warn, "config_reload_rejected")
            .field("file", path)
            .field("errors", static_cast<unsigned long>(result.errors.size()))
            .field("detail", "the running configuration stays")
            .emit();
        return current;
    }
    if (!result.kept_keys.empty()) {
        std::string keys;
        for (const auto& key : result.kept_keys) keys += (keys.empty() ? "" : ",") + key;
        LogLine(LogLevel::warn, "config_reload_needs_restart")
            .field("keys", keys)
            .field("detail", "these keys changed but only take effect on restart; their running values stay")
            .emit();
    }
    // config_reloaded (and READY=1) once every loop has switched: a request after that sees it.
    auto switching = std::make_shared<LoopsSwitching>(workers.size() + 1);
    for (auto& worker : workers)
        worker->post([target = worker.get(), serving = result.serving, switching] {
            target->adopt(serving);
            switching->one_done();
        });
    control.post_serving_config(result.serving, [switching] { switching->one_done(); });
    if (!switching->wait(kReloadSwitchTimeout))
        LogLine(LogLevel::warn, "config_reload_slow")
            .field("detail", "a loop has not switched yet; it will between its current requests")
            .emit();
    metrics.count_config_reload(true);
    log_security_warnings(*result.serving->config);
    LogLine(LogLevel::info, "config_reloaded")
        .field("file", path)
        .field("profiles", static_cast<unsigned long>(result.serving->profiles.size()))
        .field("tls", result.serving->scep_tls ? "on" : "off")
        .emit();
    return result.serving;
}

}  // namespace

int run_server(const std::string& config_path, const ConfigFile& initial) {
    const conf::Config& config = *initial.config;
    set_log_style(config.log.format == conf::LogFormat::json ? LogStyle::json : LogStyle::text);
    log_invariant_violations();  // before the threads that may violate one start
    raise_and_check_descriptor_limit(config);

    // Before the store: it reports to them from its first connection on.
    ProxyMetrics metrics(config);
    StoreReporter store_reporter(metrics.store, config.store.backend);
    auto opened = token::open_enrollment_store(config.store, &store_reporter);
    if (!opened.ok()) {
        LogLine(LogLevel::error, "store_open_failed")
            .field("backend", config.store.backend)
            .field("detail", opened.message)
            .emit();
        return 1;
    }
    std::unique_ptr<token::EnrollmentStore> store = std::move(opened.value);

    const challenge::FetchObserver report_fetch = [&metrics](const challenge::FetchReport& report) {
        report_challenge_fetch(metrics, report);
    };
    std::vector<std::string> errors;
    std::shared_ptr<const ServingConfig> serving = make_serving_config(initial, metrics, report_fetch, &errors);
    if (!serving) {
        for (const auto& error : errors) LogLine(LogLevel::error, "config_unusable").field("detail", error).emit();
        return 1;
    }
    log_security_warnings(config);

    const unsigned worker_count = config.workers;
    const auto& limits = config.limits;
    ConnectionBudget connection_budget(limits.max_connections, worker_count);
    ClientConnectionCounter client_connections(limits.per_client.max_connections);
    RateLimiter client_requests(RateLimit{limits.per_client.requests_per_minute, limits.per_client.request_burst},
                                limits.per_client.table_size);
    RateLimiter token_requests(RateLimit{limits.per_token.requests_per_minute, limits.per_token.request_burst},
                               limits.per_token.table_size);
    std::vector<int> fds;
    std::string bound;
    std::string error;
    if (!open_worker_sockets(config.scep.listen, worker_count, &fds, &bound, &error)) {
        LogLine(LogLevel::error, "listen_failed").field("listener", "scep").field("detail", error).emit();
        return 1;
    }

    // Signals are taken by this thread only (sigwait); workers never see them.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    ControlLoop control(serving, metrics, *store);
    if (!control.init(&error)) {
        LogLine(LogLevel::error, "listen_failed").field("detail", error).emit();
        return 1;
    }
    WorkerShared shared;
    shared.store = store.get();
    shared.metrics = &metrics;
    shared.connection_budget = &connection_budget;
    shared.client_connections = &client_connections;
    shared.client_requests = &client_requests;
    shared.token_requests = &token_requests;
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < worker_count; ++i) {
        workers.push_back(std::make_unique<Worker>(i, shared, serving, fds[i]));
        if (!workers.back()->init(&error)) {
            LogLine(LogLevel::error, "worker_init_failed").field("worker", i).field("detail", error).emit();
            return 1;
        }
    }
    for (auto& worker : workers) worker->start();
    control.start();
    LogLine(LogLevel::info, "listening")
        .field("listener", "scep")
        .field("address", bound)
        .field("tls", serving->scep_tls ? "on" : "off")
        .field("workers", worker_count)
        .field("version", SCEPPROXY_VERSION)
        .emit();
    ServiceNotifier notifier;
    notifier.ready();

    purge_expired_tokens(*store);
    for (;;) {
        const timespec wait{kPurgeIntervalSeconds, 0};
        const int sig = sigtimedwait(&signals, nullptr, &wait);
        if (sig < 0) {
            if (errno == EAGAIN) purge_expired_tokens(*store);
            continue;
        }
        if (sig == SIGHUP) {
            notifier.reloading();
            serving = reload(config_path, serving, metrics, report_fetch, workers, control);
            notifier.ready();
            continue;
        }
        LogLine(LogLevel::info, "shutting_down")
            .field("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT")
            .field("timeout_ms", static_cast<long long>(serving->config->limits.shutdown_timeout.count()))
            .emit();
        break;
    }
    notifier.stopping();
    control.request_stop();
    for (auto& worker : workers) worker->request_stop();
    for (auto& worker : workers) worker->join();
    control.join();
    workers.clear();
    LogLine(LogLevel::info, "stopped").emit();
    return 0;
}

}  // namespace scepproxy::proxy
