// Server: the `serve` command — opens the store and listeners, runs the workers, handles signals.
#pragma once

#include <string>

#include "proxy/server/config_file.h"

namespace scepproxy::proxy {

// Runs `initial` (read from `config_path`) until SIGTERM/SIGINT, reloading that file on SIGHUP;
// returns the process exit code.
int run_server(const std::string& config_path, const ConfigFile& initial);

}  // namespace scepproxy::proxy
