// Secrets read from *_file keys (passwords, bearer tokens, connection strings): one rule for every such file.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace scepproxy {

// A secret file is read whole, up to this size; a larger one is refused (it is not a secret file).
inline constexpr size_t kMaxSecretFileBytes = 64 * 1024;

// The secret is the file's first non-blank line without the spaces, tabs and CR around it
// (`echo secret > file` adds a newline that is not part of the secret); lines after it are
// ignored. Unreadable, blank, larger than kMaxSecretFileBytes or holding a NUL byte: nullopt
// and *error naming the file, never its content.
std::optional<std::string> read_secret_file(const std::string& path, std::string* error);

}  // namespace scepproxy
