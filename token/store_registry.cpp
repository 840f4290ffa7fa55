// The explicit list of compiled-in EnrollmentStore backends and the factory that picks one.
#include "token/store_registry.h"

#include <iterator>

#include "base/secret_file.h"
#include "token/cached_enrollment_store.h"
#include "token/postgres/postgres_enrollment_store.h"
#include "token/sqlite/sqlite_enrollment_store.h"
#include "token/webhook/webhook_enrollment_store.h"

namespace scepproxy::token {
namespace {

using OpenedStore = StoreResult<std::unique_ptr<EnrollmentStore>>;
using OpenStore = OpenedStore (*)(const conf::StoreConfig& config, StoreObserver* observer);

OpenedStore failed(StoreStatus status, std::string message) {
    OpenedStore result;
    result.status = status;
    result.message = std::move(message);
    return result;
}

sqlite::SqliteStoreOptions sqlite_options(const conf::StoreConfig& config) {
    sqlite::SqliteStoreOptions options;
    options.path = config.sqlite.path;
    return options;
}

OpenedStore open_sqlite(const conf::StoreConfig& config, StoreObserver*) {
    return sqlite::open_sqlite_enrollment_store(sqlite_options(config));
}

OpenedStore open_postgres(const conf::StoreConfig& config, StoreObserver* observer) {
    auto conninfo = postgres::read_conninfo_file(config.postgres.conninfo_file);
    if (!conninfo.ok()) return failed(conninfo.status, conninfo.message);
    postgres::PostgresStoreOptions options;
    options.conninfo = std::move(conninfo.value);
    options.pool.size = config.postgres.pool_size;
    options.pool.connect_timeout = config.postgres.connect_timeout;
    options.timeout = config.postgres.timeout;
    options.observer = observer;
    return postgres::open_postgres_enrollment_store(options);
}

OpenedStore open_webhook(const conf::StoreConfig& config, StoreObserver* observer) {
    webhook::WebhookStoreOptions options;
    options.local = sqlite_options(config);
    options.webhook.url = config.webhook.url;
    options.webhook.ca_file = config.webhook.ca_file;
    options.webhook.timeout = config.webhook.timeout;
    if (!config.webhook.bearer_token_file.empty()) {
        std::string error;
        auto token = read_secret_file(config.webhook.bearer_token_file, &error);
        if (!token) return failed(StoreStatus::invalid, "webhook bearer_token_file: " + error);
        options.webhook.bearer_token = std::move(*token);
    }
    options.concurrency = config.webhook.concurrency;
    options.observer = observer;
    return webhook::open_webhook_enrollment_store(options);
}

struct StoreBackend {
    const char* name;
    OpenStore open;
};

// Every compiled-in backend, in the order they are listed to users. A new backend
// adds one line here (an explicit list: nothing registers itself at static init).
constexpr StoreBackend kStoreBackends[] = {
    {"sqlite", &open_sqlite},
    {"postgres", &open_postgres},
    {"webhook", &open_webhook},
};

}  // namespace

std::vector<std::string> compiled_store_backends() {
    std::vector<std::string> names;
    names.reserve(std::size(kStoreBackends));
    for (const StoreBackend& backend : kStoreBackends) names.emplace_back(backend.name);
    return names;
}

StoreResult<std::unique_ptr<EnrollmentStore>> open_enrollment_store(const conf::StoreConfig& config,
                                                                    StoreObserver* observer) {
    for (const StoreBackend& backend : kStoreBackends) {
        if (config.backend != backend.name) continue;
        OpenedStore opened = backend.open(config, observer);
        if (!opened.ok()) return opened;
        StoreCacheOptions cache;
        cache.cache_ttl = config.cache_ttl;
        cache.allow_on_error = config.on_error == conf::StoreErrorPolicy::allow;
        opened.value = make_cached_enrollment_store(std::move(opened.value), std::move(cache), observer);
        return opened;
    }
    std::string have;
    for (const StoreBackend& backend : kStoreBackends) {
        if (!have.empty()) have += ", ";
        have += backend.name;
    }
    return failed(StoreStatus::invalid, "unknown backend '" + config.backend + "' (have: " + have + ")");
}

}  // namespace scepproxy::token
