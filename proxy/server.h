// Server: the `serve` command — opens the store and listeners, runs the workers, handles signals.
#pragma once

#include <memory>

#include "conf/config.h"

namespace scepproxy::proxy {

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_server(std::shared_ptr<const conf::Config> config);

}  // namespace scepproxy::proxy
