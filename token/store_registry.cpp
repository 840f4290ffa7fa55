// The explicit list of compiled-in EnrollmentStore backends and the factory that picks one.
#include "token/store_registry.h"

#include <iterator>

#include "token/sqlite/sqlite_enrollment_store.h"

namespace scepproxy::token {
namespace {

using OpenStore = StoreResult<std::unique_ptr<EnrollmentStore>> (*)(const conf::StoreConfig& config);

StoreResult<std::unique_ptr<EnrollmentStore>> open_sqlite(const conf::StoreConfig& config) {
    sqlite::SqliteStoreOptions options;
    options.path = config.sqlite.path;
    return sqlite::open_sqlite_enrollment_store(options);
}

struct StoreBackend {
    const char* name;
    OpenStore open;
};

// Every compiled-in backend, in the order they are listed to users. A new backend
// adds one line here (an explicit list: nothing registers itself at static init).
constexpr StoreBackend kStoreBackends[] = {
    {"sqlite", &open_sqlite},
};

}  // namespace

std::vector<std::string> compiled_store_backends() {
    std::vector<std::string> names;
    names.reserve(std::size(kStoreBackends));
    for (const StoreBackend& backend : kStoreBackends) names.emplace_back(backend.name);
    return names;
}

StoreResult<std::unique_ptr<EnrollmentStore>> open_enrollment_store(const conf::StoreConfig& config) {
    for (const StoreBackend& backend : kStoreBackends) {
        if (config.backend == backend.name) return backend.open(config);
    }
    std::string have;
    for (const StoreBackend& backend : kStoreBackends) {
        if (!have.empty()) have += ", ";
        have += backend.name;
    }
    StoreResult<std::unique_ptr<EnrollmentStore>> result;
    result.status = StoreStatus::invalid;
    result.message = "unknown backend '" + config.backend + "' (have: " + have + ")";
    return result;
}

}  // namespace scepproxy::token
