// Reading the configuration file: the loader with the compiled-in store backends, file checks, worker count.
#include "proxy/server/config_file.h"

#include <algorithm>
#include <thread>

#include "token/store_registry.h"

namespace scepproxy::proxy {

std::string ConfigFile::error_at(const std::string& key, const std::string& message) const {
    conf::ConfigError error;
    error.file = loaded.source_name;
    error.key = key;
    error.message = message;
    // A key that is not written (a default) is placed at its nearest written parent section.
    for (std::string at = key;;) {
        if (const auto position = loaded.position_of(at)) {
            error.line = position->line;
            error.column = position->column;
            break;
        }
        const size_t dot = at.rfind('.');
        if (dot == std::string::npos) break;
        at.resize(dot);
    }
    return error.to_string();
}

ConfigFile read_config_file(const std::string& path, bool check_files) {
    ConfigFile file;
    conf::LoadOptions options;
    options.store_backends = token::compiled_store_backends();
    file.loaded = conf::load_config_file(path, options);
    for (const auto& error : file.loaded.errors) file.errors.push_back(error.to_string());
    if (!file.loaded.ok()) return file;
    if (check_files)
        for (const auto& error : conf::check_referenced_files(file.loaded)) file.errors.push_back(error.to_string());
    if (!file.errors.empty()) return file;
    auto config = file.loaded.config;
    if (config->workers == 0) {
        // `workers: auto`: one per CPU.
        auto resolved = std::make_shared<conf::Config>(*config);
        resolved->workers = std::max(1u, std::thread::hardware_concurrency());
        config = resolved;
    }
    file.config = config;
    return file;
}

}  // namespace scepproxy::proxy
