// Secrets read from *_file keys: a challenge password, a service account's password, the admin bearer token.
#pragma once

#include <optional>
#include <string>

namespace scepproxy::challenge {

// The file's first line without trailing CR, LF, spaces or tabs (`echo secret > file` adds a
// newline that is not part of the secret). Empty, unreadable or over 64 KiB: nullopt and
// *error naming the file (never its content).
std::optional<std::string> read_secret_file(const std::string& path, std::string* error);

}  // namespace scepproxy::challenge
