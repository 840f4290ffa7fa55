// Parses argv into command words, the config path and --options.
#include "proxy/server/command_line.h"

#include <algorithm>
#include <array>

namespace scepproxy::proxy {
namespace {

constexpr std::array<const char*, 6> kValueOptions = {"--profile",  "--device",    "--ttl",
                                                      "--enrolled", "--compliant", "--config"};
constexpr std::array<const char*, 4> kFlags = {"--probe", "--help", "--version", "-h"};

bool is_value_option(const std::string& arg) {
    return std::any_of(kValueOptions.begin(), kValueOptions.end(), [&](const char* o) { return arg == o; });
}

bool is_flag(const std::string& arg) {
    return std::any_of(kFlags.begin(), kFlags.end(), [&](const char* f) { return arg == f; });
}

}  // namespace

bool CommandLine::has_flag(const std::string& flag) const {
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

std::optional<std::string> CommandLine::option(const std::string& name) const {
    auto it = options.find(name);
    if (it == options.end()) return std::nullopt;
    return it->second;
}

CommandLine parse_command_line(int argc, char** argv) {
    CommandLine result;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        bool has_inline_value = false;
        if (arg.rfind("--", 0) == 0) {
            const size_t eq = arg.find('=');
            if (eq != std::string::npos) {
                value = arg.substr(eq + 1);
                arg = arg.substr(0, eq);
                has_inline_value = true;
            }
        }
        if (arg == "-c" || is_value_option(arg)) {
            if (!has_inline_value) {
                if (i + 1 >= argc) {
                    result.error = "option " + arg + " needs a value";
                    return result;
                }
                value = argv[++i];
            }
            if (arg == "-c" || arg == "--config")
                result.config_path = value;
            else
                result.options[arg] = value;
        } else if (is_flag(arg)) {
            result.flags.push_back(arg == "-h" ? "--help" : arg);
        } else if (arg.size() > 1 && arg[0] == '-') {
            result.error = "unknown option " + arg;
            return result;
        } else {
            result.words.push_back(arg);
        }
    }
    return result;
}

}  // namespace scepproxy::proxy
