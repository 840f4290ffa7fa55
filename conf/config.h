// The validated, immutable configuration of scepproxy (what conf/config_loader produces).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scepproxy::conf {

using Duration = std::chrono::milliseconds;

// "host:port" as written in the file, split. IPv6 hosts are written "[::1]:8080"
// and stored without brackets. Port 0 asks the kernel for a free port (tests).
struct ListenAddress {
    std::string host;
    uint16_t port = 0;
    std::string text;  // as written, for logs

    bool operator==(const ListenAddress&) const = default;
};

struct ServerTlsConfig {
    std::string cert_file;
    std::string key_file;
    std::string client_ca_file;  // empty: client certificates not requested
};

struct ScepConfig {
    ListenAddress listen{"0.0.0.0", 8080, "0.0.0.0:8080"};
    std::string public_url;              // base of scep_url, no trailing slash
    std::optional<ServerTlsConfig> tls;  // issue 6
};

struct AdminConfig {
    bool enabled = false;  // true when the `admin:` section is present
    ListenAddress listen{"127.0.0.1", 9443, "127.0.0.1:9443"};
    std::string bearer_token_file;
    std::optional<ServerTlsConfig> tls;
};

struct MetricsConfig {
    bool enabled = false;  // true when the `metrics:` section is present
    ListenAddress listen{"127.0.0.1", 9100, "127.0.0.1:9100"};
};

// Limits per client address group: IPv4 addresses masked to ipv4_prefix bits, IPv6 to ipv6_prefix.
struct ClientLimitsConfig {
    uint32_t max_connections = 1000;   // open at once per group; 0: no limit
    uint32_t requests_per_minute = 0;  // sustained request rate per group; 0: no limit
    uint32_t request_burst = 100;      // requests allowed at once (the token bucket's size)
    uint32_t ipv4_prefix = 32;
    uint32_t ipv6_prefix = 64;
    uint32_t table_size = 65536;  // groups whose request rate is remembered at most

    bool operator==(const ClientLimitsConfig&) const = default;
};

// Limits per enrollment token (whatever client uses it).
struct TokenLimitsConfig {
    uint32_t requests_per_minute = 0;  // 0: no limit
    uint32_t request_burst = 20;
    uint32_t table_size = 65536;  // tokens whose request rate is remembered at most

    bool operator==(const TokenLimitsConfig&) const = default;
};

struct LimitsConfig {
    uint32_t max_connections = 20000;
    uint32_t max_request_line_bytes = 16384;
    uint32_t max_header_bytes = 32768;
    uint32_t max_headers = 64;
    uint32_t max_body_bytes = 65536;
    // Request buffer bytes of all SCEP client connections together; at least 4 x (max_header_bytes +
    // max_body_bytes), one largest request's buffers. 20000 connections each buffering a typical
    // request (a few KiB, in a 4-8 KiB block) take about 160 MiB.
    uint32_t max_buffered_bytes = 256u << 20;
    Duration header_timeout = std::chrono::seconds(10);
    Duration body_timeout = std::chrono::seconds(30);
    Duration idle_timeout = std::chrono::seconds(60);
    Duration send_timeout = std::chrono::seconds(30);
    Duration shutdown_timeout = std::chrono::seconds(30);
    ClientLimitsConfig per_client;
    TokenLimitsConfig per_token;
};

enum class LogFormat { text, json };

struct LogConfig {
    LogFormat format = LogFormat::text;
    bool access_log = true;
};

enum class StoreErrorPolicy { deny, allow };

struct SqliteStoreConfig {
    std::string path = "/var/lib/scepproxy/enrollments.db";

    bool operator==(const SqliteStoreConfig&) const = default;
};

struct PostgresStoreConfig {
    std::string conninfo_file;
    uint32_t pool_size = 4;  // connections (and store threads) per proxy
    Duration connect_timeout = std::chrono::seconds(5);
    Duration timeout = std::chrono::seconds(2);  // each store operation, waiting included

    bool operator==(const PostgresStoreConfig&) const = default;
};

struct WebhookStoreConfig {
    std::string url;
    std::string bearer_token_file;
    std::string ca_file;  // empty: the system CA store
    Duration timeout = std::chrono::seconds(2);
    uint32_t concurrency = 8;  // webhook requests in flight at once

    bool operator==(const WebhookStoreConfig&) const = default;
};

struct StoreConfig {
    std::string backend = "sqlite";  // checked against the store registry by the loader's caller
    SqliteStoreConfig sqlite;
    PostgresStoreConfig postgres;
    WebhookStoreConfig webhook;
    Duration cache_ttl = std::chrono::seconds(5);
    StoreErrorPolicy on_error = StoreErrorPolicy::deny;

    bool operator==(const StoreConfig&) const = default;
};

// One upstream SCEP endpoint, e.g. http://ndes1.corp.example.com/certsrv/mscep/mscep.dll
struct UpstreamConfig {
    std::string url;          // as written
    std::string scheme;       // "http" or "https"
    std::string host;         // without brackets for IPv6
    uint16_t port = 0;        // default 80/443 from the scheme
    std::string path;         // "/certsrv/mscep/mscep.dll"; "/" when empty
    std::string host_header;  // "host" or "host:port" when the port is not the default
    std::string name;         // label in logs and metrics: as configured, else "host:port" (unique per profile)
};

// Active health checks of a profile's upstreams: GetCACaps every `interval`; an upstream is
// taken out after `fall` failed checks in a row and back in after `rise` good ones.
struct HealthCheckConfig {
    Duration interval = std::chrono::seconds(5);
    Duration timeout = std::chrono::seconds(2);  // one check, connect included
    uint32_t fall = 3;
    uint32_t rise = 2;
};

struct UpstreamTlsConfig {
    std::string ca_file;
    bool verify = true;
    std::string client_cert_file;
    std::string client_key_file;
};

enum class ChallengeType { none, static_password, dynamic };
enum class ChallengeAuth { basic, ntlm };

struct ChallengeConfig {
    ChallengeType type = ChallengeType::none;
    std::string password_file;  // static: the password; dynamic: the service account's password
    std::string url;            // dynamic: mscep_admin URL
    ChallengeAuth auth = ChallengeAuth::basic;
    std::string username;
    std::string client_cert_file;
    std::string client_key_file;
    std::string ca_file;
    bool verify = true;
    Duration lifetime = std::chrono::minutes(60);
    Duration timeout = std::chrono::seconds(10);
    uint32_t expected_length = 0;                      // 0: any length
    uint32_t max_concurrent_fetches = 2;               // per profile and process: spares NDES in bulk rollouts
    Duration queue_timeout = std::chrono::seconds(5);  // longest wait for a free fetch slot
};

struct ProfileConfig {
    static constexpr size_t kMaxUpstreams = 16;
    std::string name;
    std::vector<UpstreamConfig> upstreams;  // at least one, at most kMaxUpstreams
    std::optional<UpstreamTlsConfig> tls;
    // Present: active checks, and an upstream that refuses a connection is taken out until
    // `rise` checks pass. Absent: every upstream is always tried (a failed one is skipped per request).
    std::optional<HealthCheckConfig> health_check;
    Duration connect_timeout = std::chrono::seconds(5);
    Duration timeout = std::chrono::seconds(30);  // whole upstream response
    uint32_t max_idle_connections = 32;           // per worker, per upstream
    uint32_t max_response_bytes = 4 << 20;        // an upstream answer's body; larger: 502
    Duration ca_cache_ttl = std::chrono::minutes(5);
    // How often each upstream's GetCACert is fetched in the background (its CA/RA certificates:
    // routing by recipient, expiry, changes).
    Duration ca_refresh_interval = std::chrono::hours(1);
    // Upstreams with different CA/RA certificates are intended (each request still goes only to
    // the upstreams that can decrypt it); false: `check --probe` fails and a warning is logged.
    bool allow_mixed_ra = false;
    Duration token_ttl = std::chrono::minutes(55);
    // PKIOperation: devices send PKCSReq, RenewalReq and CertPoll; GetCert and GetCRL only if allowed.
    bool allow_get_cert = false;
    bool allow_get_crl = false;
    // A CertRep FAILURE frees the token for another try (false: the token is done either way).
    bool release_on_failure = true;
    // GetCACaps answers shown to devices list POSTPKIOperation even when the upstream's don't:
    // the proxy turns a device's POST into the GET such an upstream takes.
    bool advertise_post_pki_operation = true;
    ChallengeConfig challenge;
};

struct Config {
    std::string
        source_path;       // the file it was loaded from; relative file paths in it are resolved against its directory
    uint32_t workers = 0;  // 0 until resolved; `auto` resolves to the number of CPUs
    ScepConfig scep;
    AdminConfig admin;
    MetricsConfig metrics;
    LimitsConfig limits;
    LogConfig log;
    StoreConfig store;
    std::vector<ProfileConfig> profiles;  // in file order, at least one

    const ProfileConfig* find_profile(std::string_view name) const {
        for (const auto& p : profiles)
            if (p.name == name) return &p;
        return nullptr;
    }
};

}  // namespace scepproxy::conf
