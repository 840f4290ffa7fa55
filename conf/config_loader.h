// Loads the YAML config file into an immutable, validated Config and reports every error with its position.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace scepproxy::conf {

// A place in the config file, 1-based. Line 0 means "no position" (e.g. the file could not be read).
struct Position {
    int line = 0;
    int column = 0;
};

struct ConfigError {
    std::string file;
    int line = 0;     // 1-based; 0 when the error has no position
    int column = 0;   // 1-based
    std::string key;  // dotted path, e.g. "profiles.wifi.upstreams[0].url"; empty for file-level errors
    std::string message;

    // "FILE:LINE:COL: key: message"; the position and key are left out when the error has none.
    std::string to_string() const;
};

struct LoadOptions {
    // Names of the compiled-in store backends (token::compiled_store_backends()).
    // `store.backend` must be one of them.
    std::vector<std::string> store_backends;
};

// A *_file key in use and the path it names.
struct FileReference {
    std::string key;   // e.g. "admin.bearer_token_file"
    std::string path;  // as stored in Config (relative paths resolved against the config file's directory)
};

struct LoadResult {
    std::string source_name;                        // the file name used in errors
    std::shared_ptr<const Config> config;           // null when there are errors
    std::vector<ConfigError> errors;                // sorted by position
    std::map<std::string, Position> key_positions;  // every key present in the file, by dotted path
    std::vector<FileReference> referenced_files;    // *_file keys in use (not those of unselected store backends)

    bool ok() const { return config != nullptr; }

    // Where `key` (a dotted path) is written, if it is in the file.
    std::optional<Position> position_of(std::string_view key) const;

    // Every error as to_string(), one per line.
    std::string error_text() const;
};

// Reads and validates `path`. A missing or unreadable file is an error without a position.
LoadResult load_config_file(const std::string& path, const LoadOptions& options);

// Same, from text; `source_name` is used as the file name in errors and as Config::source_path,
// and relative file paths are resolved against its directory (if it has one).
LoadResult load_config_text(const std::string& text, const std::string& source_name, const LoadOptions& options);

// Checks that every referenced *_file is a regular file we can open for reading
// (the contents are not read). Errors point at the key that names the file.
std::vector<ConfigError> check_referenced_files(const LoadResult& result);

// One key of the schema, for documentation and tests. Paths use "<name>" for a profile
// name and "[]" for a list element, e.g. "profiles.<name>.upstreams[].url".
struct KeyInfo {
    std::string path;
    bool needs_restart = false;  // a change only takes effect after a restart (not on reload)
};

// Every key the loader knows, sections included, in schema order.
std::vector<KeyInfo> config_keys();

}  // namespace scepproxy::conf
