// Secret files: a bounded read, the first non-blank line trimmed, errors that name the file only.
#include "base/secret_file.h"

#include <algorithm>
#include <fstream>
#include <string_view>

namespace scepproxy {
namespace {

constexpr std::string_view kBlankInLine = " \t\r";

}  // namespace

std::optional<std::string> read_secret_file(const std::string& path, std::string* error) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        *error = "cannot read " + path;
        return std::nullopt;
    }
    // One byte more than allowed: enough to tell "at the limit" from "over it".
    std::string content(kMaxSecretFileBytes + 1, '\0');
    file.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<size_t>(file.gcount()));
    if (content.size() > kMaxSecretFileBytes) {
        *error = path + " is larger than " + std::to_string(kMaxSecretFileBytes / 1024) + " KiB";
        return std::nullopt;
    }
    if (content.find('\0') != std::string::npos) {
        // A C string (libcurl, libpq) would silently cut the secret short.
        *error = path + " holds a NUL byte";
        return std::nullopt;
    }
    size_t line_start = 0;
    while (line_start < content.size()) {
        const size_t line_end = std::min(content.find('\n', line_start), content.size());
        const std::string_view line = std::string_view(content).substr(line_start, line_end - line_start);
        const size_t first = line.find_first_not_of(kBlankInLine);
        if (first != std::string_view::npos) {
            const size_t last = line.find_last_not_of(kBlankInLine);
            return std::string(line.substr(first, last - first + 1));
        }
        line_start = line_end + 1;
    }
    *error = path + " is empty";
    return std::nullopt;
}

}  // namespace scepproxy
