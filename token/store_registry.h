// The explicit list of compiled-in EnrollmentStore backends and the factory that picks one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "token/enrollment_store.h"

namespace scepproxy::token {

// Names of the compiled-in backends, e.g. {"sqlite"}.
std::vector<std::string> compiled_store_backends();

// Opens the backend named by config.backend (creating/migrating its schema).
// Unknown name: status invalid, message "unknown backend 'mysql' (have: sqlite)".
StoreResult<std::unique_ptr<EnrollmentStore>> open_enrollment_store(const conf::StoreConfig& config);

}  // namespace scepproxy::token
