// The explicit list of compiled-in EnrollmentStore backends and the factory that picks one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "token/enrollment_store.h"
#include "token/store_observer.h"

namespace scepproxy::token {

// Names of the compiled-in backends, e.g. {"sqlite", "postgres", "webhook"}.
std::vector<std::string> compiled_store_backends();

// Opens the backend named by config.backend (creating/migrating its schema) and puts the
// per-worker cache and the on_error policy in front of it (cached_enrollment_store.h).
// Unknown name: status invalid, message "unknown backend 'mysql' (have: sqlite, ...)".
// `observer` (may be null) sees every operation and the backends' events; it must
// outlive the store.
StoreResult<std::unique_ptr<EnrollmentStore>> open_enrollment_store(const conf::StoreConfig& config,
                                                                    StoreObserver* observer = nullptr);

}  // namespace scepproxy::token
