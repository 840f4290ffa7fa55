// Tests that the shipped example configs load and that the annotated example documents every key.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "conf/config_loader.h"

using namespace scepproxy::conf;

namespace {

const std::string kConfDir = std::string(SCEPPROXY_SOURCE_DIR) + "/conf/";
const LoadOptions kAllBackends{{"sqlite", "postgres", "webhook"}};

// "profiles.wifi.upstreams[1].url" -> "profiles.<name>.upstreams[].url", the form config_keys() uses.
std::string schema_path(const std::string& path) {
    static const std::regex profile_name(R"(^profiles\.[^.\[]+)");
    static const std::regex list_index(R"(\[[0-9]+\])");
    return std::regex_replace(std::regex_replace(path, profile_name, "profiles.<name>"), list_index, "[]");
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// The comment lines directly above line `line` (1-based), lowercased and joined.
std::string comment_above(const std::vector<std::string>& lines, int line) {
    std::string comment;
    for (int i = line - 2; i >= 0; --i) {
        const auto first = lines[i].find_first_not_of(' ');
        if (first == std::string::npos || lines[i][first] != '#') break;
        comment = lines[i].substr(first) + "\n" + comment;
    }
    std::transform(comment.begin(), comment.end(), comment.begin(), [](unsigned char c) { return std::tolower(c); });
    return comment;
}

}  // namespace

TEST_CASE("the annotated example config loads without errors", "[conf][examples]") {
    const auto result = load_config_file(kConfDir + "scepproxy.example.yaml", kAllBackends);
    INFO(result.error_text());
    REQUIRE(result.ok());
    const Config& c = *result.config;
    CHECK(c.scep.tls);
    CHECK(c.admin.enabled);
    CHECK(c.admin.tls);
    CHECK(c.metrics.enabled);
    REQUIRE(c.profiles.size() == 2);
    CHECK(c.profiles[0].upstreams.size() == 2);
    CHECK(c.profiles[0].challenge.type == ChallengeType::dynamic);
    CHECK(c.profiles[1].challenge.type == ChallengeType::static_password);
    // Only the selected backend's files are needed to run.
    for (const auto& ref : result.referenced_files) CHECK(ref.key.rfind("store.", 0) != 0);
}

TEST_CASE("the minimal example config loads with only sqlite compiled in", "[conf][examples]") {
    const auto result = load_config_file(kConfDir + "scepproxy.minimal.yaml", LoadOptions{{"sqlite"}});
    INFO(result.error_text());
    REQUIRE(result.ok());
    CHECK(result.config->profiles.size() == 1);
    CHECK(result.config->store.backend == "sqlite");
    CHECK(result.referenced_files.empty());
}

TEST_CASE("the annotated example sets every key the loader knows", "[conf][examples]") {
    const auto result = load_config_file(kConfDir + "scepproxy.example.yaml", kAllBackends);
    REQUIRE(result.ok());
    std::map<std::string, int> written;
    for (const auto& [path, position] : result.key_positions) written.emplace(schema_path(path), position.line);
    const auto keys = config_keys();
    REQUIRE(keys.size() > 50);
    for (const auto& key : keys) {
        INFO(key.path);
        CHECK(written.count(key.path) == 1);
    }
}

TEST_CASE("the annotated example says restart exactly where the schema needs one", "[conf][examples]") {
    const std::string path = kConfDir + "scepproxy.example.yaml";
    const auto result = load_config_file(path, kAllBackends);
    REQUIRE(result.ok());
    const auto lines = read_lines(path);
    // The first place each schema key is written: that is where it is documented.
    std::map<std::string, int> first_line;
    for (const auto& [key_path, position] : result.key_positions) {
        auto [it, inserted] = first_line.emplace(schema_path(key_path), position.line);
        if (!inserted) it->second = std::min(it->second, position.line);
    }
    int restart_keys = 0;
    for (const auto& key : config_keys()) {
        INFO(key.path);
        REQUIRE(first_line.count(key.path) == 1);
        const std::string comment = comment_above(lines, first_line[key.path]);
        CHECK((comment.find("restart") != std::string::npos) == key.needs_restart);
        restart_keys += key.needs_restart ? 1 : 0;
    }
    // workers, admin, metrics, the three listen addresses, store, log.format,
    // limits.max_connections, limits.per_client, limits.per_token
    CHECK(restart_keys == 11);
}

namespace {

// The Debian package's /etc/scepproxy/scepproxy.yaml, with the commented-out blocks that follow
// a line "# KEY:" (and are indented under it) uncommented when `uncomment` is true.
std::string packaged_config(bool uncomment) {
    std::ifstream in(std::string(SCEPPROXY_SOURCE_DIR) + "/packaging/debian/scepproxy.yaml");
    std::string text;
    bool in_block = false;
    for (std::string line; std::getline(in, line);) {
        static const std::regex block_start(R"(^( *)# (tls|challenge):$)");
        static const std::regex block_line(R"(^( *)#   (.*)$)");
        std::smatch m;
        if (uncomment && std::regex_match(line, m, block_start)) {
            line = m[1].str() + m[2].str() + ":";
            in_block = true;
        } else if (uncomment && in_block && std::regex_match(line, m, block_line)) {
            line = m[1].str() + "  " + m[2].str();
        } else {
            in_block = false;
        }
        text += line + "\n";
    }
    return text;
}

}  // namespace

TEST_CASE("the Debian package's config loads: loopback admin and metrics, sqlite under /var/lib/scepproxy",
          "[conf][examples]") {
    const auto result = load_config_text(packaged_config(false), "scepproxy.yaml", LoadOptions{{"sqlite"}});
    INFO(result.error_text());
    REQUIRE(result.ok());
    const Config& c = *result.config;
    CHECK_FALSE(c.scep.tls);
    REQUIRE(c.admin.enabled);
    CHECK(c.admin.listen.host == "127.0.0.1");
    CHECK(c.admin.bearer_token_file == "/etc/scepproxy/admin.token");  // postinst creates it
    REQUIRE(c.metrics.enabled);
    CHECK(c.metrics.listen.host == "127.0.0.1");
    CHECK(c.metrics.listen.port != 9100);  // prometheus-node-exporter's port
    CHECK(c.store.backend == "sqlite");
    CHECK(c.store.sqlite.path.rfind("/var/lib/scepproxy/", 0) == 0);  // the unit's StateDirectory
    REQUIRE(c.profiles.size() == 1);
    CHECK(c.profiles[0].challenge.type == ChallengeType::none);
    // The unit's TimeoutStopSec=45s leaves room for the drain.
    CHECK(c.limits.shutdown_timeout < std::chrono::seconds(45));
    // No file but the admin token is referenced: `scepproxy check` passes as installed.
    REQUIRE(result.referenced_files.size() == 1);
    CHECK(result.referenced_files[0].path == "/etc/scepproxy/admin.token");
}

TEST_CASE("the Debian package's config stays valid with its TLS and NDES blocks uncommented", "[conf][examples]") {
    const std::string text = packaged_config(true);
    INFO(text);
    const auto result = load_config_text(text, "scepproxy.yaml", LoadOptions{{"sqlite"}});
    INFO(result.error_text());
    REQUIRE(result.ok());
    const Config& c = *result.config;
    CHECK(c.scep.tls);
    REQUIRE(c.profiles.size() == 1);
    CHECK(c.profiles[0].tls);
    CHECK(c.profiles[0].challenge.type == ChallengeType::dynamic);
    CHECK(c.profiles[0].challenge.auth == ChallengeAuth::ntlm);
}
