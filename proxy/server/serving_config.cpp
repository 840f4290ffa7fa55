// ServingConfig: building one generation — TLS contexts, upstream addresses, admin secret, challenge sources, metrics.
#include "proxy/server/serving_config.h"

#include "base/secret_file.h"

namespace scepproxy::proxy {
namespace {

constexpr size_t kMinBearerTokenLength = 16;

SslCtxPtr server_tls(const ConfigFile& file, const std::string& key, const conf::ServerTlsConfig& tls,
                     std::vector<std::string>* errors) {
    std::string error;
    // The key ("scep.tls", "admin.tls") names the listener: its sessions resume only on it.
    SslCtxPtr ctx = make_server_tls_context(tls, key, &error);
    if (!ctx) errors->push_back(file.error_at(key, error));
    return ctx;
}

}  // namespace

const ProfileTargets* ServingConfig::find_profile(std::string_view name) const {
    for (const auto& targets : profiles)
        if (targets.profile->name == name) return &targets;
    return nullptr;
}

std::shared_ptr<const ServingConfig> make_serving_config(const ConfigFile& file, ProxyMetrics& metrics,
                                                         challenge::FetchObserver observer,
                                                         std::vector<std::string>* errors) {
    const size_t errors_before = errors->size();
    auto serving = std::make_shared<ServingConfig>();
    serving->config = file.config;
    const conf::Config& config = *file.config;
    if (config.scep.tls) serving->scep_tls = server_tls(file, "scep.tls", *config.scep.tls, errors);
    if (config.admin.enabled) {
        if (config.admin.tls) serving->admin_tls = server_tls(file, "admin.tls", *config.admin.tls, errors);
        std::string error;
        const auto token = read_secret_file(config.admin.bearer_token_file, &error);
        if (!token)
            errors->push_back(file.error_at("admin.bearer_token_file", error));
        else if (token->size() < kMinBearerTokenLength)
            errors->push_back(file.error_at("admin.bearer_token_file",
                                            "the token must be at least 16 characters (e.g. openssl rand -hex 32)"));
        else
            serving->admin_credentials.emplace(*token);
    }
    std::string error;
    if (!resolve_profile_targets(config, &serving->profiles, &error))
        errors->push_back(file.error_at("profiles", error));
    // Reads the service accounts' passwords: an unreadable one fails here, not at the first fetch.
    serving->challenges = challenge::ChallengeSources::open(config, std::move(observer), &error);
    if (!serving->challenges) errors->push_back(file.error_at("profiles", error));
    if (errors->size() != errors_before) return nullptr;
    for (auto& targets : serving->profiles) {
        serving->profile_metrics.push_back(metrics.resolve_profile(*targets.profile));
        serving->profile_certificates.push_back(std::make_unique<ProfileCertificates>());
        const ProfileMetrics& profile_metrics = serving->profile_metrics.back();
        for (size_t i = 0; i < targets.upstreams.size(); ++i)
            targets.upstreams[i].health->set_gauge(profile_metrics.upstream_up[i]);
    }
    return serving;
}

}  // namespace scepproxy::proxy
