// Secret files: bounded read of the first line, with errors that name the file only.
#include "proxy/challenge/secret_file.h"

#include <fstream>

namespace scepproxy::challenge {
namespace {

constexpr size_t kMaxSecretFileBytes = 64 * 1024;

}  // namespace

std::optional<std::string> read_secret_file(const std::string& path, std::string* error) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        *error = "cannot read " + path;
        return std::nullopt;
    }
    std::string content(kMaxSecretFileBytes + 1, '\0');
    file.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<size_t>(file.gcount()));
    if (content.size() > kMaxSecretFileBytes) {
        *error = path + " is larger than 64 KiB";
        return std::nullopt;
    }
    std::string line = content.substr(0, content.find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (line.empty()) {
        *error = path + " is empty";
        return std::nullopt;
    }
    return line;
}

}  // namespace scepproxy::challenge
