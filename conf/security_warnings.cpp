// Security warnings: the checks of settings that weaken security, and the libpq connection string reading they need.
#include "conf/security_warnings.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>

#include "base/secret_file.h"

namespace scepproxy::conf {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

bool is_http_url(std::string_view url) { return url.size() >= 7 && iequals(url.substr(0, 7), "http://"); }

// localhost, 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. Other names: not known to be loopback.
bool is_loopback(std::string_view host) {
    if (iequals(host, "localhost") || iequals(host, "localhost.")) return true;
    const std::string text(host);
    in_addr v4{};
    if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> parts;
    for (;;) {
        const size_t at = text.find(separator);
        parts.emplace_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        const auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        };
        if (i + 2 >= text.size()) return std::nullopt;
        const int high = hex(text[i + 1]);
        const int low = hex(text[i + 2]);
        if (high < 0 || low < 0) return std::nullopt;
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
    return out;
}

// Keeps the options that say where and how the connection goes; a later one wins, as in libpq.
void set_option(PostgresTarget* target, const std::string& keyword, std::string value) {
    if (keyword == "host") target->host = std::move(value);
    if (keyword == "hostaddr") target->hostaddr = std::move(value);
    if (keyword == "sslmode") target->sslmode = std::move(value);
    // The JDBC spelling libpq also takes.
    if (keyword == "ssl" && value == "true") target->sslmode = "require";
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// keyword=value pairs as libpq reads them: spaces around '=', values in single quotes, '\' escapes.
bool parse_keyword_values(std::string_view text, PostgresTarget* target) {
    size_t i = 0;
    const auto skip_spaces = [&] {
        while (i < text.size() && is_space(text[i])) ++i;
    };
    for (;;) {
        skip_spaces();
        if (i == text.size()) return true;
        const size_t keyword_start = i;
        while (i < text.size() && text[i] != '=' && !is_space(text[i])) ++i;
        const std::string keyword(text.substr(keyword_start, i - keyword_start));
        skip_spaces();
        if (i == text.size() || text[i] != '=' || keyword.empty()) return false;
        ++i;
        skip_spaces();
        std::string value;
        if (i < text.size() && text[i] == '\'') {
            for (++i;; ++i) {
                if (i == text.size()) return false;  // unterminated quoted string
                if (text[i] == '\\') {
                    if (++i == text.size()) return false;
                    value += text[i];
                } else if (text[i] == '\'') {
                    ++i;
                    break;
                } else {
                    value += text[i];
                }
            }
        } else {
            for (; i < text.size() && !is_space(text[i]); ++i) {
                if (text[i] == '\\' && i + 1 < text.size()) ++i;
                value += text[i];
            }
        }
        set_option(target, keyword, std::move(value));
    }
}

// postgresql://[user[:password]@][host[:port][,...]][/dbname][?param=value&...]
bool parse_uri(std::string_view text, PostgresTarget* target) {
    text.remove_prefix(text.find("://") + 3);
    const size_t authority_end = std::min(text.find('/'), text.find('?'));
    std::string_view authority = text.substr(0, authority_end);
    if (const size_t at = authority.find('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
    std::string hosts;
    bool first = true;
    for (const std::string& entry : split(authority, ',')) {
        std::string_view host = entry;
        if (host.starts_with("[")) {
            const size_t close = host.find(']');
            if (close == std::string_view::npos) return false;
            host = host.substr(1, close - 1);
        } else {
            host = host.substr(0, host.find(':'));
        }
        const auto decoded = percent_decode(host);
        if (!decoded) return false;
        hosts += (first ? "" : ",") + *decoded;
        first = false;
    }
    // Without a netloc libpq connects to the default socket, as with no host at all.
    if (!authority.empty()) target->host = hosts;
    if (authority_end == std::string_view::npos) return true;
    const size_t query = text.find('?', authority_end);
    if (query == std::string_view::npos) return true;
    for (const std::string& pair : split(text.substr(query + 1), '&')) {
        if (pair.empty()) continue;
        const size_t equals = pair.find('=');
        if (equals == std::string::npos) return false;
        const auto keyword = percent_decode(std::string_view(pair).substr(0, equals));
        const auto value = percent_decode(std::string_view(pair).substr(equals + 1));
        if (!keyword || !value) return false;
        set_option(target, *keyword, *value);
    }
    return true;
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

std::string octal_mode(unsigned mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", mode & 07777);
    return text;
}

void check_tls_verification(const Config& config, std::vector<SecurityWarning>* out) {
    for (const auto& profile : config.profiles) {
        const std::string key = "profiles." + profile.name;
        if (profile.tls && !profile.tls->verify)
            out->push_back({key + ".tls.verify",
                            "false: the upstreams' TLS certificates are not checked, so anyone on the path to NDES "
                            "can pose as it and read or answer the enrollments: set tls.ca_file to the CA that "
                            "issued the NDES server certificate and remove verify: false"});
        const auto& challenge = profile.challenge;
        if (challenge.type == ChallengeType::dynamic && !challenge.verify && !is_http_url(challenge.url))
            out->push_back({key + ".challenge.verify",
                            "false: mscep_admin's TLS certificate is not checked, so anyone on the path can pose "
                            "as it, take the service account's credentials and hand out challenges: set "
                            "challenge.ca_file to the CA that issued its certificate and remove verify: false"});
    }
}

void check_cleartext_credentials(const Config& config, std::vector<SecurityWarning>* out) {
    for (const auto& profile : config.profiles) {
        const auto& challenge = profile.challenge;
        if (challenge.type != ChallengeType::dynamic || !is_http_url(challenge.url)) continue;
        const std::string credentials =
            challenge.auth == ChallengeAuth::basic
                ? "basic authentication sends the service account's password unencrypted"
                : "NTLM authentication lets anyone on the path relay the service account's login or crack its "
                  "password offline";
        out->push_back({"profiles." + profile.name + ".challenge.url",
                        "http://: " + credentials +
                            ", and every challenge password NDES hands out crosses the network in clear: use the "
                            "https:// URL of mscep_admin"});
    }
    const auto& webhook = config.store.webhook;
    if (config.store.backend == "webhook" && !webhook.bearer_token_file.empty() && is_http_url(webhook.url))
        out->push_back({"store.webhook.url",
                        "http:// with a bearer token: the token and the devices' compliance answers cross the "
                        "network in clear, so anyone on the path can take the token or forge answers: use an "
                        "https:// URL"});
}

void check_admin_listener(const Config& config, std::vector<SecurityWarning>* out) {
    if (!config.admin.enabled || config.admin.tls || is_loopback(config.admin.listen.host)) return;
    out->push_back({"admin.listen",
                    config.admin.listen.text +
                        " is not a loopback address and admin.tls is not set: the bearer token and the challenge "
                        "passwords the admin API hands out cross the network in clear: add admin.tls (cert_file, "
                        "key_file), or listen on 127.0.0.1 and reach it through a TLS-terminating proxy"});
}

const char* environment(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
}

void check_postgres_transport(const Config& config, std::vector<SecurityWarning>* out) {
    if (config.store.backend != "postgres" || config.store.postgres.conninfo_file.empty()) return;
    std::string error;
    const auto conninfo = read_secret_file(config.store.postgres.conninfo_file, &error);
    if (!conninfo) return;
    PostgresTarget target = parse_postgres_conninfo(*conninfo);
    if (!target.parsed) return;  // opening the store reports it
    // What the string leaves out, libpq takes from the environment.
    if (!target.host && environment("PGHOST")) target.host = environment("PGHOST");
    if (!target.hostaddr && environment("PGHOSTADDR")) target.hostaddr = environment("PGHOSTADDR");
    std::string sslmode_source;
    if (target.sslmode) {
        sslmode_source = "sslmode=" + *target.sslmode;
    } else if (const char* from_environment = environment("PGSSLMODE")) {
        target.sslmode = from_environment;
        sslmode_source = "sslmode=" + *target.sslmode + " (from PGSSLMODE)";
    } else {
        target.sslmode = "prefer";
        sslmode_source = "no sslmode (libpq's default: prefer)";
    }
    if (*target.sslmode == "verify-full") return;
    std::string remote;
    for (const std::string& host : connection_hosts(target))
        if (!is_local_host(host)) remote += (remote.empty() ? "" : ", ") + host;
    if (remote.empty()) return;
    const std::string risk =
        *target.sslmode == "verify-ca" ? "the server's certificate is checked but not that it belongs to that host"
        : *target.sslmode == "require"
            ? "the connection is encrypted but the server's certificate is not checked, so anyone on the path "
              "can pose as the database"
            : "the connection may be unencrypted, so anyone on the path can read and change the tokens";
    out->push_back({"store.postgres.conninfo_file",
                    "PostgreSQL at " + remote + " with " + sslmode_source + ": " + risk +
                        ": add sslmode=verify-full and sslrootcert=<the database server's CA file> to the "
                        "connection string in " +
                        quoted(config.store.postgres.conninfo_file)});
}

// The files whose content is a secret: passwords, bearer tokens, connection strings, private keys.
std::vector<std::pair<std::string, std::string>> secret_files(const Config& config) {
    std::vector<std::pair<std::string, std::string>> files;
    const auto add = [&](std::string key, const std::string& path) {
        if (!path.empty()) files.emplace_back(std::move(key), path);
    };
    if (config.scep.tls) add("scep.tls.key_file", config.scep.tls->key_file);
    if (config.admin.enabled) {
        add("admin.bearer_token_file", config.admin.bearer_token_file);
        if (config.admin.tls) add("admin.tls.key_file", config.admin.tls->key_file);
    }
    if (config.store.backend == "postgres") add("store.postgres.conninfo_file", config.store.postgres.conninfo_file);
    if (config.store.backend == "webhook")
        add("store.webhook.bearer_token_file", config.store.webhook.bearer_token_file);
    for (const auto& profile : config.profiles) {
        const std::string key = "profiles." + profile.name;
        if (profile.tls) add(key + ".tls.client_key_file", profile.tls->client_key_file);
        if (profile.challenge.type == ChallengeType::none) continue;
        add(key + ".challenge.password_file", profile.challenge.password_file);
        if (profile.challenge.type == ChallengeType::dynamic)
            add(key + ".challenge.client_key_file", profile.challenge.client_key_file);
    }
    return files;
}

void check_secret_file_modes(const Config& config, std::vector<SecurityWarning>* out) {
    for (const auto& [key, path] : secret_files(config)) {
        struct stat status {};
        if (::stat(path.c_str(), &status) != 0 || !S_ISREG(status.st_mode)) continue;
        const unsigned mode = status.st_mode;
        std::string exposed;
        const auto add = [&](const char* what) { exposed += (exposed.empty() ? "" : ", ") + std::string(what); };
        if (mode & S_IROTH) add("every local user can read it");
        if (mode & S_IWOTH) add("every local user can change it");
        if (mode & S_IWGRP) add("its group can change it");
        if (exposed.empty()) continue;
        out->push_back({key, quoted(path) + " has mode " + octal_mode(mode) + ": " + exposed +
                                 ": chmod 0640 it, owned by root with the service's group (chown root:scepproxy)"});
    }
}

}  // namespace

bool is_local_host(std::string_view host) {
    // An empty host is libpq's default, the Unix socket; '@' starts an abstract socket name.
    if (host.empty() || host.starts_with("/") || host.starts_with("@")) return true;
    return is_loopback(host);
}

PostgresTarget parse_postgres_conninfo(std::string_view conninfo) {
    PostgresTarget target;
    if (conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://")) {
        target.parsed = parse_uri(conninfo, &target);
    } else if (conninfo.find('=') == std::string_view::npos) {
        // The store passes the string as an expandable dbname: without '=' it is just a database name.
        target.parsed = true;
    } else {
        target.parsed = parse_keyword_values(conninfo, &target);
    }
    return target;
}

std::vector<std::string> connection_hosts(const PostgresTarget& target) {
    // libpq pairs the lists by position; a hostaddr is where it connects, the host is then only the name checked.
    const std::vector<std::string> hosts = split(target.host.value_or(""), ',');
    const std::vector<std::string> addresses = split(target.hostaddr.value_or(""), ',');
    std::vector<std::string> out;
    for (size_t i = 0; i < std::max(hosts.size(), addresses.size()); ++i) {
        if (i < addresses.size() && !addresses[i].empty())
            out.push_back(addresses[i]);
        else
            out.push_back(i < hosts.size() ? hosts[i] : "");
    }
    return out;
}

std::vector<SecurityWarning> find_security_warnings(const Config& config) {
    std::vector<SecurityWarning> warnings;
    check_admin_listener(config, &warnings);
    check_postgres_transport(config, &warnings);
    check_cleartext_credentials(config, &warnings);
    check_tls_verification(config, &warnings);
    check_secret_file_modes(config, &warnings);
    return warnings;
}

}  // namespace scepproxy::conf
