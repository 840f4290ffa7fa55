// scepproxy entry point: dispatches the CLI commands (serve, check, token, device) of DESIGN.md.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "conf/config_values.h"
#include "conf/security_warnings.h"
#include "proxy/challenge/challenge_source.h"
#include "proxy/server/command_line.h"
#include "proxy/server/config_file.h"
#include "proxy/admin/enrollment_issuer.h"
#include "proxy/admin/enrollment_json.h"
#include "proxy/server/server.h"
#include "proxy/server/upstream_probe.h"
#include "token/enrollment_token.h"
#include "token/store_registry.h"

namespace {

using namespace scepproxy;

constexpr const char* kUsage = R"(usage: scepproxy COMMAND [-c FILE] [OPTIONS]

Commands:
  serve  -c FILE                      run the proxy (default FILE /etc/scepproxy/scepproxy.yaml)
  check  -c FILE [--probe]            validate the configuration (errors as FILE:LINE:COL: key: message;
                                      settings that weaken security as warning: FILE:LINE:COL: ...,
                                      exit status still 0);
                                      --probe also asks every upstream for GetCACaps and GetCACert
                                      (status, capabilities, certificates, certificate groups) and
                                      fetches one challenge per dynamic profile (this uses up one
                                      NDES password each)
  token issue  -c FILE --profile P --device D [--ttl DURATION]
                                      create an enrollment token; prints
                                      {"token","scep_url","challenge","expires_at"}
  token show   -c FILE TOKEN          show a token's state (JSON)
  token revoke -c FILE TOKEN          revoke a token
  device set   -c FILE --device D [--enrolled true|false] [--compliant true|false]
                                      record a device's enrollment and compliance
  --help, --version

Exit codes: 0 success, 1 failure (reason on stderr), 2 usage error.
)";

int usage_error(const std::string& message) {
    std::fprintf(stderr, "scepproxy: %s\n\n%s", message.c_str(), kUsage);
    return 2;
}

// Loads and validates the config; prints every error and returns null on failure.
// check_files: also reports referenced files that can't be opened.
std::shared_ptr<const conf::Config> load_config(const std::string& path, bool check_files = false) {
    const proxy::ConfigFile file = proxy::read_config_file(path, check_files);
    for (const auto& error : file.errors) std::fprintf(stderr, "%s\n", error.c_str());
    return file.config;
}

std::unique_ptr<token::EnrollmentStore> open_store(const conf::Config& config) {
    auto opened = token::open_enrollment_store(config.store);
    if (!opened.ok()) {
        std::fprintf(stderr, "scepproxy: cannot open the %s store: %s\n", config.store.backend.c_str(),
                     opened.message.c_str());
        return nullptr;
    }
    return std::move(opened.value);
}

std::optional<bool> parse_bool(const std::string& text) {
    if (text == "true" || text == "yes" || text == "1") return true;
    if (text == "false" || text == "no" || text == "0") return false;
    return std::nullopt;
}

void print_json(const nlohmann::json& value) { std::printf("%s\n", proxy::json_text(value, 2).c_str()); }

// `check --probe`: like NDES's "Test Connection", GetCACaps and GetCACert from every upstream
// (all at once) and one mscep_admin fetch per dynamic profile; printed per profile, in config order.
// Each challenge fetch uses up one single-use NDES password. True when every probe succeeded.
bool probe_profiles(const conf::Config& config) {
    const std::vector<proxy::ProfileProbeResult> upstreams = proxy::probe_upstreams(config);
    bool all_ok = true;
    for (size_t i = 0; i < config.profiles.size(); ++i) {
        const conf::ProfileConfig& profile = config.profiles[i];
        const char* name = profile.name.c_str();
        if (profile.challenge.type == conf::ChallengeType::dynamic) {
            std::string error;
            const auto sources = challenge::ChallengeSources::open(config, nullptr, &error, profile.name);
            const challenge::ChallengeResult result =
                sources ? sources->find(profile.name)->obtain(std::chrono::steady_clock::now())
                        : challenge::ChallengeResult{challenge::ChallengeOutcome::internal_error, {}, error, 0};
            if (result.outcome == challenge::ChallengeOutcome::ok) {
                std::printf("profile %s: challenge: ok (a %zu-character password from %s; one NDES password used)\n",
                            name, result.password.size(), profile.challenge.url.c_str());
            } else {
                std::printf("profile %s: challenge: %s: %s\n", name, challenge::to_string(result.outcome),
                            result.detail.c_str());
                all_ok = false;
            }
        }
        if (!proxy::print_upstream_probe(stdout, upstreams[i])) all_ok = false;
    }
    return all_ok;
}

// Settings that work but weaken security: "warning: FILE:LINE:COL: key: message" on stderr, one
// per finding; they don't change the exit status.
void print_security_warnings(const proxy::ConfigFile& file) {
    for (const auto& warning : conf::find_security_warnings(*file.config))
        std::fprintf(stderr, "warning: %s\n", file.error_at(warning.key, warning.message).c_str());
}

int command_check(const proxy::CommandLine& cli) {
    const proxy::ConfigFile file = proxy::read_config_file(cli.config_path, true);
    for (const auto& error : file.errors) std::fprintf(stderr, "%s\n", error.c_str());
    if (!file.ok()) return 1;
    print_security_warnings(file);
    if (cli.has_flag("--probe") && !probe_profiles(*file.config)) {
        std::fprintf(stderr, "%s: probe failed\n", cli.config_path.c_str());
        return 1;
    }
    std::printf("%s: ok\n", cli.config_path.c_str());
    return 0;
}

int command_token_issue(const proxy::CommandLine& cli, const conf::Config& config, token::EnrollmentStore& store) {
    const auto profile = cli.option("--profile");
    const auto device = cli.option("--device");
    if (!profile || !device) return usage_error("token issue needs --profile and --device");
    std::optional<conf::Duration> ttl;
    if (const auto text = cli.option("--ttl")) {
        const auto parsed = conf::parse_duration(*text);
        if (!parsed.value || parsed.value->count() <= 0) return usage_error("--ttl: expected a duration like 30m, 1h");
        ttl = *parsed.value;
    }
    std::string error;
    // Only this profile's secrets are read: another profile's unreadable file doesn't matter here.
    const auto challenges = challenge::ChallengeSources::open(config, nullptr, &error, *profile);
    if (!challenges) {
        std::fprintf(stderr, "scepproxy: token issue: %s\n", error.c_str());
        return 1;
    }
    proxy::IssueRequest request;
    request.profile = *profile;
    request.device_id = *device;
    request.ttl = ttl;
    request.now = unix_now();
    request.queued_at = std::chrono::steady_clock::now();
    const proxy::IssueResult issued = proxy::issue_enrollment(config, store, *challenges, request);
    if (issued.status != proxy::IssueStatus::ok) {
        std::fprintf(stderr, "scepproxy: token issue: %s\n", issued.message.c_str());
        return 1;
    }
    print_json(proxy::issued_enrollment_json(issued.enrollment));
    return 0;
}

std::optional<token::EnrollmentToken> token_argument(const proxy::CommandLine& cli) {
    if (cli.words.size() != 3) return std::nullopt;
    return token::EnrollmentToken::parse(cli.words[2]);
}

int command_token_show(const proxy::CommandLine& cli, token::EnrollmentStore& store) {
    const auto token = token_argument(cli);
    if (!token) return usage_error("token show needs one TOKEN (a GUID)");
    const auto found = store.find_token(token->hash());
    if (found.status == token::StoreStatus::not_found) {
        std::fprintf(stderr, "scepproxy: no such token\n");
        return 1;
    }
    if (!found.ok()) {
        std::fprintf(stderr, "scepproxy: store: %s\n", found.message.c_str());
        return 1;
    }
    print_json(proxy::token_record_json(found.value, unix_now()));
    return 0;
}

int command_token_revoke(const proxy::CommandLine& cli, token::EnrollmentStore& store) {
    const auto token = token_argument(cli);
    if (!token) return usage_error("token revoke needs one TOKEN (a GUID)");
    const token::StoreStatus status = store.revoke_token(token->hash(), unix_now());
    if (status == token::StoreStatus::not_found) {
        std::fprintf(stderr, "scepproxy: no such token\n");
        return 1;
    }
    if (status != token::StoreStatus::ok) {
        std::fprintf(stderr, "scepproxy: store: %s\n", token::to_string(status));
        return 1;
    }
    std::printf("revoked %s\n", token->hash().id().c_str());
    return 0;
}

int command_device_set(const proxy::CommandLine& cli, token::EnrollmentStore& store) {
    const auto device = cli.option("--device");
    if (!device || !proxy::is_valid_device_id(*device))
        return usage_error("device set needs --device D (1-256 printable characters)");
    token::DeviceRecord record;
    record.device_id = *device;
    record.enrolled = true;
    record.compliant = true;
    const auto existing = store.get_device(*device);
    if (existing.ok())
        record = existing.value;
    else if (existing.status != token::StoreStatus::not_found) {
        std::fprintf(stderr, "scepproxy: store: %s\n", existing.message.c_str());
        return 1;
    }
    for (const char* name : {"--enrolled", "--compliant"}) {
        if (const auto text = cli.option(name)) {
            const auto value = parse_bool(*text);
            if (!value) return usage_error(std::string(name) + ": expected true or false");
            (std::string(name) == "--enrolled" ? record.enrolled : record.compliant) = *value;
        }
    }
    record.updated_at = unix_now();
    const token::StoreStatus status = store.set_device(record);
    if (status != token::StoreStatus::ok) {
        std::fprintf(stderr, "scepproxy: store: %s\n", token::to_string(status));
        return 1;
    }
    print_json(proxy::device_record_json(record));
    return 0;
}

// Commands that work on the enrollment store share its opening.
int run_store_command(const proxy::CommandLine& cli) {
    const auto config = load_config(cli.config_path);
    if (!config) return 1;
    auto store = open_store(*config);
    if (!store) return 1;
    const std::string& group = cli.words[0];
    const std::string action = cli.words.size() > 1 ? cli.words[1] : "";
    if (group == "token" && action == "issue") return command_token_issue(cli, *config, *store);
    if (group == "token" && action == "show") return command_token_show(cli, *store);
    if (group == "token" && action == "revoke") return command_token_revoke(cli, *store);
    if (group == "device" && action == "set") return command_device_set(cli, *store);
    return usage_error("unknown command '" + group + (action.empty() ? "" : " " + action) + "'");
}

}  // namespace

int main(int argc, char** argv) {
    const proxy::CommandLine cli = proxy::parse_command_line(argc, argv);
    if (!cli.error.empty()) return usage_error(cli.error);
    if (cli.has_flag("--version")) {
        std::printf("scepproxy %s\n", SCEPPROXY_VERSION);
        return 0;
    }
    if (cli.has_flag("--help") || cli.words.empty()) {
        std::printf("%s", kUsage);
        return cli.words.empty() && !cli.has_flag("--help") ? 2 : 0;
    }
    const std::string& command = cli.words[0];
    if (command == "serve") {
        const proxy::ConfigFile file = proxy::read_config_file(cli.config_path, false);
        for (const auto& error : file.errors) std::fprintf(stderr, "%s\n", error.c_str());
        return file.ok() ? proxy::run_server(cli.config_path, file) : 1;
    }
    if (command == "check") return command_check(cli);
    if (command == "token" || command == "device") return run_store_command(cli);
    return usage_error("unknown command '" + command + "'");
}
