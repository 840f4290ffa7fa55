// Tests for security warnings: each finding from a config that has it, none from one that doesn't; the conninfo reader.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "conf/config_loader.h"
#include "conf/security_warnings.h"
#include "test/unit/token/temp_directory.h"

using namespace scepproxy::conf;

namespace {

// A file with `content` and `mode` in the test's temp directory.
std::string write_file(const scepproxy::token::test::TempDirectory& dir, const std::string& name,
                       const std::string& content, mode_t mode = 0640) {
    const std::string path = dir.file(name);
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    return path;
}

// libpq's environment defaults would change the PostgreSQL findings.
struct NoPostgresEnvironment {
    NoPostgresEnvironment() {
        for (const char* name : {"PGHOST", "PGHOSTADDR", "PGSSLMODE"}) ::unsetenv(name);
    }
    ~NoPostgresEnvironment() {
        for (const char* name : {"PGHOST", "PGHOSTADDR", "PGSSLMODE"}) ::unsetenv(name);
    }
};

// One profile "p" with an http upstream and no challenge, sqlite store, no admin: no findings.
Config base_config() {
    Config config;
    ProfileConfig& profile = config.profiles.emplace_back();
    profile.name = "p";
    UpstreamConfig upstream;
    upstream.url = "https://ndes/certsrv/mscep/mscep.dll";
    upstream.scheme = "https";
    profile.upstreams.push_back(upstream);
    return config;
}

std::vector<std::string> keys(const std::vector<SecurityWarning>& warnings) {
    std::vector<std::string> out;
    for (const auto& w : warnings) out.push_back(w.key);
    return out;
}

// The one warning about `key` (fails when there is not exactly one).
SecurityWarning warning_for(const Config& config, const std::string& key) {
    const auto warnings = find_security_warnings(config);
    std::vector<SecurityWarning> found;
    std::copy_if(warnings.begin(), warnings.end(), std::back_inserter(found),
                 [&](const SecurityWarning& w) { return w.key == key; });
    INFO("warnings for: " << Catch::Detail::stringify(keys(warnings)));
    REQUIRE(found.size() == 1);
    return found.front();
}

ChallengeConfig dynamic_challenge(const std::string& url, const std::string& password_file) {
    ChallengeConfig challenge;
    challenge.type = ChallengeType::dynamic;
    challenge.url = url;
    challenge.username = "CORP\\svc-ndes";
    challenge.password_file = password_file;
    return challenge;
}

}  // namespace

TEST_CASE("security warnings: none for the base config", "[conf][security]") {
    CHECK(find_security_warnings(base_config()).empty());
}

TEST_CASE("security warnings: upstream tls.verify false", "[conf][security]") {
    Config config = base_config();
    config.profiles[0].tls = UpstreamTlsConfig{};
    CHECK(find_security_warnings(config).empty());
    config.profiles[0].tls->verify = false;
    const auto warning = warning_for(config, "profiles.p.tls.verify");
    CHECK_THAT(warning.message, Catch::Contains("not checked") && Catch::Contains("tls.ca_file"));
}

TEST_CASE("security warnings: challenge verify false over https", "[conf][security]") {
    scepproxy::token::test::TempDirectory dir;
    Config config = base_config();
    config.profiles[0].challenge = dynamic_challenge("https://ndes/certsrv/mscep_admin/", write_file(dir, "pw", "x"));
    CHECK(find_security_warnings(config).empty());
    config.profiles[0].challenge.verify = false;
    const auto warning = warning_for(config, "profiles.p.challenge.verify");
    CHECK_THAT(warning.message, Catch::Contains("challenge.ca_file"));
    // Over http:// verify has nothing to check: only the cleartext finding.
    config.profiles[0].challenge.url = "http://ndes/certsrv/mscep_admin/";
    CHECK(keys(find_security_warnings(config)) == std::vector<std::string>{"profiles.p.challenge.url"});
}

TEST_CASE("security warnings: challenge basic or NTLM authentication over http", "[conf][security]") {
    scepproxy::token::test::TempDirectory dir;
    Config config = base_config();
    const std::string password = write_file(dir, "pw", "x");
    config.profiles[0].challenge = dynamic_challenge("http://ndes/certsrv/mscep_admin/", password);
    CHECK_THAT(warning_for(config, "profiles.p.challenge.url").message,
               Catch::Contains("basic authentication sends the service account's password unencrypted") &&
                   Catch::Contains("https://"));
    config.profiles[0].challenge.auth = ChallengeAuth::ntlm;
    CHECK_THAT(warning_for(config, "profiles.p.challenge.url").message, Catch::Contains("NTLM"));
    config.profiles[0].challenge.url = "HTTPS://ndes/certsrv/mscep_admin/";
    CHECK(find_security_warnings(config).empty());
    // A static password is never sent anywhere.
    config.profiles[0].challenge = ChallengeConfig{};
    config.profiles[0].challenge.type = ChallengeType::static_password;
    config.profiles[0].challenge.password_file = password;
    CHECK(find_security_warnings(config).empty());
}

TEST_CASE("security warnings: webhook bearer token over http", "[conf][security]") {
    scepproxy::token::test::TempDirectory dir;
    Config config = base_config();
    config.store.backend = "webhook";
    config.store.webhook.url = "http://mdm.example.com/scep-check";
    CHECK(find_security_warnings(config).empty());  // no token to lose
    config.store.webhook.bearer_token_file = write_file(dir, "token", "t");
    CHECK_THAT(warning_for(config, "store.webhook.url").message, Catch::Contains("https://"));
    config.store.webhook.url = "https://mdm.example.com/scep-check";
    CHECK(find_security_warnings(config).empty());
    // Not the selected backend: not used.
    config.store.webhook.url = "http://mdm.example.com/scep-check";
    config.store.backend = "sqlite";
    CHECK(find_security_warnings(config).empty());
}

TEST_CASE("security warnings: admin listener beyond loopback without TLS", "[conf][security]") {
    scepproxy::token::test::TempDirectory dir;
    Config config = base_config();
    config.admin.enabled = true;
    config.admin.bearer_token_file = write_file(dir, "admin-token", "t");
    for (const char* host : {"127.0.0.1", "127.8.9.10", "::1", "localhost", "::ffff:127.0.0.1"}) {
        config.admin.listen = {host, 9443, std::string(host) + ":9443"};
        INFO(host);
        CHECK(find_security_warnings(config).empty());
    }
    for (const char* host : {"0.0.0.0", "::", "10.1.2.3", "admin.corp.example.com"}) {
        config.admin.listen = {host, 9443, std::string(host) + ":9443"};
        INFO(host);
        CHECK_THAT(warning_for(config, "admin.listen").message,
                   Catch::StartsWith(std::string(host) + ":9443 is not a loopback address") &&
                       Catch::Contains("add admin.tls"));
    }
    config.admin.tls = ServerTlsConfig{"cert.pem", write_file(dir, "key.pem", "k", 0600), ""};
    CHECK(find_security_warnings(config).empty());
    config.admin.enabled = false;
    config.admin.tls.reset();
    CHECK(find_security_warnings(config).empty());
}

TEST_CASE("security warnings: PostgreSQL without sslmode=verify-full on a remote host", "[conf][security]") {
    NoPostgresEnvironment no_environment;
    scepproxy::token::test::TempDirectory dir;
    Config config = base_config();
    config.store.backend = "postgres";
    const auto with_conninfo = [&](const std::string& conninfo) {
        config.store.postgres.conninfo_file = write_file(dir, "conninfo", conninfo + "\n", 0600);
        return find_security_warnings(config);
    };
    for (const char* local : {
             "dbname=scep",                                  // the default Unix socket
             "host=/var/run/postgresql dbname=scep",         // a socket directory
             "host=localhost dbname=scep user=scep",         // loopback
             "host=127.0.0.1 sslmode=disable",               // loopback, even without TLS
             "postgresql:///scep",                           // URI, default socket
             "postgresql://%2Fvar%2Frun%2Fpostgresql/scep",  // URI, a socket directory
             "postgresql://[::1]:5432/scep",                 // URI, loopback
             "host=db.corp sslmode=verify-full", "host = 'db.corp' sslmode = 'verify-full'",
             "postgresql://scep:pw@db.corp:5432,db2.corp/scep?sslmode=verify-full",
             "scep",  // just a database name
         }) {
        INFO(local);
        CHECK(with_conninfo(local).empty());
    }
    const std::string key = "store.postgres.conninfo_file";
    CHECK_THAT(with_conninfo("host=db.corp dbname=scep")[0].message,
               Catch::StartsWith("PostgreSQL at db.corp with no sslmode (libpq's default: prefer)") &&
                   Catch::Contains("add sslmode=verify-full"));
    CHECK_THAT(with_conninfo("host=db.corp sslmode=require")[0].message,
               Catch::Contains("sslmode=require: the connection is encrypted but the server's certificate is not"));
    CHECK_THAT(with_conninfo("host=db.corp sslmode=verify-ca")[0].message, Catch::Contains("sslmode=verify-ca"));
    // The remote host among local ones, hostaddr over host, URI forms.
    CHECK_THAT(with_conninfo("host=/tmp,db2.corp")[0].message, Catch::StartsWith("PostgreSQL at db2.corp with"));
    CHECK_THAT(with_conninfo("host=localhost hostaddr=10.0.0.5 sslmode=require")[0].message,
               Catch::StartsWith("PostgreSQL at 10.0.0.5 with"));
    CHECK_THAT(with_conninfo("postgresql://scep@db.corp/scep?sslmode=prefer")[0].message,
               Catch::StartsWith("PostgreSQL at db.corp with sslmode=prefer"));
    CHECK_THAT(with_conninfo("postgres://localhost/scep?host=db.corp")[0].message,
               Catch::StartsWith("PostgreSQL at db.corp"));
    CHECK(keys(with_conninfo("host=db.corp")) == std::vector<std::string>{key});
    // libpq's environment fills in what the string leaves out.
    ::setenv("PGSSLMODE", "verify-full", 1);
    CHECK(with_conninfo("host=db.corp").empty());
    CHECK_THAT(with_conninfo("host=db.corp sslmode=require")[0].message, Catch::Contains("sslmode=require"));
    ::unsetenv("PGSSLMODE");
    ::setenv("PGHOST", "db.corp", 1);
    CHECK_THAT(with_conninfo("dbname=scep")[0].message, Catch::StartsWith("PostgreSQL at db.corp"));
    ::unsetenv("PGHOST");
    // A string libpq would refuse: opening the store says so, not this.
    CHECK(with_conninfo("host='db.corp").empty());
}

TEST_CASE("security warnings: secret files other users can read", "[conf][security]") {
    scepproxy::token::test::TempDirectory dir;
    Config config = base_config();
    config.admin.enabled = true;
    config.admin.bearer_token_file = write_file(dir, "admin-token", "t", 0640);
    config.profiles[0].challenge.type = ChallengeType::static_password;
    config.profiles[0].challenge.password_file = write_file(dir, "challenge", "c", 0600);
    config.scep.tls = ServerTlsConfig{dir.file("cert.pem"), write_file(dir, "key.pem", "k", 0400), ""};
    CHECK(find_security_warnings(config).empty());

    ::chmod(config.admin.bearer_token_file.c_str(), 0644);
    CHECK(warning_for(config, "admin.bearer_token_file").message ==
          "'" + config.admin.bearer_token_file +
              "' has mode 0644: every local user can read it: chmod 0640 it, owned by root with the service's "
              "group (chown root:scepproxy)");
    ::chmod(config.admin.bearer_token_file.c_str(), 0640);
    ::chmod(config.profiles[0].challenge.password_file.c_str(), 0660);
    CHECK_THAT(warning_for(config, "profiles.p.challenge.password_file").message,
               Catch::Contains("mode 0660: its group can change it"));
    ::chmod(config.profiles[0].challenge.password_file.c_str(), 0600);
    ::chmod(config.scep.tls->key_file.c_str(), 0666);
    CHECK_THAT(warning_for(config, "scep.tls.key_file").message,
               Catch::Contains("every local user can read it, every local user can change it, its group can change"));
    // A missing file is an error elsewhere, not a warning here.
    config.scep.tls->key_file = dir.file("missing.pem");
    CHECK(find_security_warnings(config).empty());
}

TEST_CASE("security warnings: every key is one the loader records a position for", "[conf][security]") {
    NoPostgresEnvironment no_environment;
    scepproxy::token::test::TempDirectory dir;
    const std::string admin_token = write_file(dir, "admin.token", "t", 0644);
    const std::string conninfo = write_file(dir, "pg.conninfo", "host=db.corp\n", 0600);
    const std::string password = write_file(dir, "pw", "p", 0600);
    const std::string text = R"(scep:
  public_url: "http://scep.example.com"
admin:
  listen: "0.0.0.0:9443"
  bearer_token_file: )" + admin_token +
                             R"(
store:
  backend: postgres
  postgres:
    conninfo_file: )" + conninfo +
                             R"(
profiles:
  p:
    upstreams:
      - url: "https://ndes/certsrv/mscep/mscep.dll"
    tls:
      verify: false
    challenge:
      type: dynamic
      url: "http://ndes/certsrv/mscep_admin/"
      username: svc
      password_file: )" + password +
                             R"(
)";
    const LoadResult loaded = load_config_text(text, "test.yaml", LoadOptions{{"sqlite", "postgres"}});
    INFO(loaded.error_text());
    REQUIRE(loaded.ok());
    const auto warnings = find_security_warnings(*loaded.config);
    CHECK(keys(warnings) == std::vector<std::string>{"admin.listen", "store.postgres.conninfo_file",
                                                     "profiles.p.challenge.url", "profiles.p.tls.verify",
                                                     "admin.bearer_token_file"});
    for (const auto& warning : warnings) {
        INFO(warning.key);
        CHECK(loaded.position_of(warning.key));
    }
}

TEST_CASE("postgres conninfo: keyword values and URIs", "[conf][security]") {
    const PostgresTarget quoted = parse_postgres_conninfo(R"(host='db\'s host' sslmode=require password='a b')");
    REQUIRE(quoted.parsed);
    CHECK(quoted.host == "db's host");
    CHECK(quoted.sslmode == "require");
    CHECK_FALSE(quoted.hostaddr);

    const PostgresTarget uri = parse_postgres_conninfo("postgresql://u:p%40ss@[2001:db8::1]:5432,h2:5433/db?ssl=true");
    REQUIRE(uri.parsed);
    CHECK(uri.host == "2001:db8::1,h2");
    CHECK(uri.sslmode == "require");
    CHECK(connection_hosts(uri) == std::vector<std::string>{"2001:db8::1", "h2"});

    const PostgresTarget paired = parse_postgres_conninfo("host=a,b hostaddr=,10.0.0.2");
    CHECK(connection_hosts(paired) == std::vector<std::string>{"a", "10.0.0.2"});
    CHECK(connection_hosts(parse_postgres_conninfo("dbname=x")) == std::vector<std::string>{""});

    CHECK_FALSE(parse_postgres_conninfo("host db=x").parsed);  // no '=' after the keyword
    CHECK_FALSE(parse_postgres_conninfo("=x").parsed);
    CHECK_FALSE(parse_postgres_conninfo("postgresql://[::1/db").parsed);
    CHECK_FALSE(parse_postgres_conninfo("postgresql://h/db?sslmode=%zz").parsed);
}

TEST_CASE("local hosts: sockets and loopback only", "[conf][security]") {
    for (const char* host : {"", "/var/run/postgresql", "@abstract", "localhost", "LocalHost", "127.0.0.1",
                             "127.255.0.1", "::1", "::ffff:127.0.0.1"})
        CHECK(is_local_host(host));
    for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "db.corp", "localhost.corp", "::2"})
        CHECK_FALSE(is_local_host(host));
}
