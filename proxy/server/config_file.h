// Reading the configuration file for `serve`, `check` and SIGHUP reloads: load, validate, resolve `workers: auto`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "conf/config_loader.h"

namespace scepproxy::proxy {

struct ConfigFile {
    conf::LoadResult loaded;                     // where each key is written, for later errors
    std::shared_ptr<const conf::Config> config;  // null when there are errors; workers resolved
    std::vector<std::string> errors;             // "FILE:LINE:COL: key: message"

    bool ok() const { return config != nullptr; }
    // An error about `key` at the place the file writes it (or its nearest written parent).
    std::string error_at(const std::string& key, const std::string& message) const;
};

// check_files: also check that every *_file it names can be opened (what `check` does).
ConfigFile read_config_file(const std::string& path, bool check_files);

}  // namespace scepproxy::proxy
