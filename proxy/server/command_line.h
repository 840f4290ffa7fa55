// CommandLine: the parsed `scepproxy` arguments (command words, -c FILE, --flag VALUE options).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace scepproxy::proxy {

struct CommandLine {
    std::vector<std::string> words;  // e.g. {"token", "issue"} or {"token", "show", "<guid>"}
    std::string config_path = "/etc/scepproxy/scepproxy.yaml";
    std::map<std::string, std::string> options;  // "--profile" -> "wifi"
    std::vector<std::string> flags;              // "--probe", "--help", "--version"
    std::string error;                           // set when the arguments can't be parsed

    bool has_flag(const std::string& flag) const;
    std::optional<std::string> option(const std::string& name) const;
};

// Options that take a value; everything else starting with "--" is a flag.
CommandLine parse_command_line(int argc, char** argv);

}  // namespace scepproxy::proxy
