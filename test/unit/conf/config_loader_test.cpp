// Tests for the config loader: values read into Config, and errors reported as FILE:LINE:COL: key: message.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "conf/config_loader.h"

using namespace scepproxy::conf;
using namespace std::chrono_literals;

namespace {

const LoadOptions kOptions{{"sqlite", "postgres"}};

// Raw-string YAML starts on the line after R"(, so drop that first newline: line 1 of the
// text is then the first line written in the test.
std::string yaml(std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    return std::string(text);
}

LoadResult load(std::string_view text) { return load_config_text(yaml(text), "test.yaml", kOptions); }

std::vector<std::string> error_lines(const LoadResult& result) {
    std::vector<std::string> lines;
    for (const auto& e : result.errors) lines.push_back(e.to_string());
    return lines;
}

// The one error about `key` (fails the test when there is not exactly one).
ConfigError error_for(const LoadResult& result, const std::string& key) {
    std::vector<ConfigError> found;
    std::copy_if(result.errors.begin(), result.errors.end(), std::back_inserter(found),
                 [&](const ConfigError& e) { return e.key == key; });
    INFO(result.error_text());
    REQUIRE(found.size() == 1);
    return found.front();
}

// A valid config to which tests add lines (lines 1-6; new keys under the profile use 4 spaces).
const std::string kValid = R"(
scep:
  public_url: "http://scep.example.com"
profiles:
  p:
    upstreams:
      - url: "http://ndes/certsrv/mscep/mscep.dll"
)";

}  // namespace

TEST_CASE("the base config of these tests is valid and gets the defaults", "[conf][loader]") {
    const auto result = load(kValid);
    INFO(result.error_text());
    REQUIRE(result.ok());
    const Config& c = *result.config;
    CHECK(c.source_path == "test.yaml");
    CHECK(c.workers == 0);
    CHECK(c.scep.listen.host == "0.0.0.0");
    CHECK(c.scep.listen.port == 8080);
    CHECK_FALSE(c.scep.tls);
    CHECK_FALSE(c.admin.enabled);
    CHECK_FALSE(c.metrics.enabled);
    CHECK(c.limits.max_header_bytes == LimitsConfig{}.max_header_bytes);
    CHECK(c.limits.header_timeout == LimitsConfig{}.header_timeout);
    CHECK(c.store.backend == "sqlite");
    REQUIRE(c.profiles.size() == 1);
    CHECK(c.profiles[0].challenge.type == ChallengeType::none);
    CHECK_FALSE(c.profiles[0].tls);
}

TEST_CASE("every kind of value is read into Config", "[conf][loader]") {
    const auto result = load_config_text(yaml(R"(
workers: 4
scep:
  listen: "[::1]:8443"
  public_url: "https://scep.example.com/mdm/"
  tls:
    cert_file: tls/scep.crt
    key_file: /abs/scep.key
admin:
  bearer_token_file: admin.token
metrics:
limits:
  header_timeout: 500ms
  max_body_bytes: 2048
  max_connections: 1000000
log:
  format: json
  access_log: false
store:
  backend: postgres
  postgres:
    conninfo_file: pg.conninfo
    pool_size: 2
  cache_ttl: 0s
  on_error: allow
profiles:
  wifi:
    upstreams:
      - url: "https://ndes1:8443/certsrv/mscep/mscep.dll"
      - url: "http://ndes2"
    connect_timeout: 2s
    max_idle_connections: 0
    token_ttl: 30m
    challenge:
      type: static
      password_file: wifi.pass
  vpn:
    upstreams:
      - url: "http://ndes3/x"
    challenge:
      type: dynamic
      url: "https://ndes3/certsrv/mscep_admin/"
      auth: ntlm
      username: 'CORP\svc-ndes'
      password_file: /etc/scepproxy/ndes.pass
      expected_length: 16
)"),
                                         "/etc/scepproxy/scepproxy.yaml", kOptions);
    INFO(result.error_text());
    REQUIRE(result.ok());
    const Config& c = *result.config;
    CHECK(c.workers == 4);
    CHECK(c.scep.listen.host == "::1");
    CHECK(c.scep.listen.port == 8443);
    CHECK(c.scep.public_url == "https://scep.example.com/mdm");
    REQUIRE(c.scep.tls);
    CHECK(c.scep.tls->cert_file == "/etc/scepproxy/tls/scep.crt");  // relative to the config file
    CHECK(c.scep.tls->key_file == "/abs/scep.key");
    CHECK(c.scep.tls->client_ca_file.empty());
    CHECK(c.admin.enabled);
    CHECK(c.admin.listen.text == "127.0.0.1:9443");
    CHECK(c.admin.bearer_token_file == "/etc/scepproxy/admin.token");
    CHECK(c.metrics.enabled);  // an empty section still turns the listener on
    CHECK(c.metrics.listen.port == 9100);
    CHECK(c.limits.header_timeout == 500ms);
    CHECK(c.limits.max_body_bytes == 2048);
    CHECK(c.limits.max_connections == 1000000);
    CHECK(c.log.format == LogFormat::json);
    CHECK_FALSE(c.log.access_log);
    CHECK(c.store.backend == "postgres");
    CHECK(c.store.postgres.conninfo_file == "/etc/scepproxy/pg.conninfo");
    CHECK(c.store.postgres.pool_size == 2);
    CHECK(c.store.cache_ttl == 0ms);
    CHECK(c.store.on_error == StoreErrorPolicy::allow);

    REQUIRE(c.profiles.size() == 2);
    const ProfileConfig& wifi = c.profiles[0];
    CHECK(wifi.name == "wifi");
    REQUIRE(wifi.upstreams.size() == 2);
    CHECK(wifi.upstreams[0].scheme == "https");
    CHECK(wifi.upstreams[0].host == "ndes1");
    CHECK(wifi.upstreams[0].port == 8443);
    CHECK(wifi.upstreams[0].path == "/certsrv/mscep/mscep.dll");
    CHECK(wifi.upstreams[0].host_header == "ndes1:8443");
    CHECK(wifi.upstreams[1].url == "http://ndes2");
    CHECK(wifi.upstreams[1].path == "/");
    CHECK(wifi.connect_timeout == 2s);
    CHECK(wifi.max_idle_connections == 0);
    CHECK(wifi.token_ttl == 30min);
    CHECK(wifi.challenge.type == ChallengeType::static_password);
    CHECK(wifi.challenge.password_file == "/etc/scepproxy/wifi.pass");

    const ProfileConfig* vpn = c.find_profile("vpn");
    REQUIRE(vpn);
    CHECK(vpn->challenge.type == ChallengeType::dynamic);
    CHECK(vpn->challenge.auth == ChallengeAuth::ntlm);
    CHECK(vpn->challenge.username == "CORP\\svc-ndes");
    CHECK(vpn->challenge.url == "https://ndes3/certsrv/mscep_admin/");
    CHECK(vpn->challenge.expected_length == 16);
}

TEST_CASE("an unknown top-level key is reported at its position with a suggestion", "[conf][loader]") {
    const auto result = load(kValid + "wrkers: 4\n");
    CHECK_FALSE(result.ok());
    CHECK(error_lines(result) ==
          std::vector<std::string>{"test.yaml:7:1: wrkers: unknown key (did you mean 'workers'?)"});
}

TEST_CASE("an unknown key far from any known one lists the known keys", "[conf][loader]") {
    const auto result = load(kValid + "log:\n  colour: true\n");
    CHECK(error_lines(result) ==
          std::vector<std::string>{"test.yaml:8:3: log.colour: unknown key (known keys: format, access_log)"});
}

TEST_CASE("unknown nested keys are reported with their dotted path and position", "[conf][loader]") {
    const auto result = load(R"(
scep:
  public_url: "http://scep.example.com"
  lisen: ":8080"
profiles:
  p:
    upstreams:
      - url: "http://ndes/"
        weight: 2
    challenge:
      typ: static
)");
    CHECK(error_lines(result) ==
          std::vector<std::string>{
              "test.yaml:3:3: scep.lisen: unknown key (did you mean 'listen'?)",
              "test.yaml:8:9: profiles.p.upstreams[0].weight: unknown key (known keys: url, name)",
              "test.yaml:10:7: profiles.p.challenge.typ: unknown key (did you mean 'type'?)",
          });
}

TEST_CASE("a YAML syntax error is reported with its position", "[conf][loader]") {
    const auto unclosed = load("scep: [1, 2\nprofiles: {}\n");
    REQUIRE(unclosed.errors.size() == 1);
    CHECK(unclosed.errors[0].line == 2);
    CHECK(unclosed.errors[0].column > 0);
    CHECK(unclosed.errors[0].key.empty());
    CHECK(unclosed.errors[0].message.rfind("YAML syntax error: ", 0) == 0);
    CHECK(unclosed.errors[0].to_string().rfind("test.yaml:2:", 0) == 0);

    const auto bad_indent = load("scep:\n  public_url: x\n bad: 1\n");
    REQUIRE(bad_indent.errors.size() == 1);
    CHECK(bad_indent.errors[0].line == 3);
    CHECK_FALSE(bad_indent.ok());

    const auto undefined_alias = load("workers: *nope\n");
    REQUIRE(undefined_alias.errors.size() == 1);
    CHECK(undefined_alias.errors[0].line == 1);
}

TEST_CASE("deeply nested YAML is a syntax error, not a crash", "[conf][loader]") {
    const auto result = load(kValid + "workers: " + std::string(100000, '[') + std::string(100000, ']') + "\n");
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].message == "YAML syntax error: nested too deeply");
    CHECK(result.errors[0].line == 7);
}

TEST_CASE("error reporting stops after 100 errors", "[conf][loader]") {
    // Twenty upstreams that alias one mapping of twenty unknown keys: 400 errors without the cap.
    std::string text = "x: &bad {";
    for (int i = 0; i < 20; ++i) text += (i ? ", k" : "k") + std::to_string(i) + ": 1";
    text += "}\nscep: {public_url: \"http://s\"}\nprofiles:\n  p:\n    upstreams: [";
    for (int i = 0; i < 20; ++i) text += i ? ", *bad" : "*bad";
    text += "]\n";
    const auto result = load(text);
    REQUIRE(result.errors.size() == 101);
    CHECK(result.errors.back().to_string() == "test.yaml: too many errors: stopped after the first 100");
}

TEST_CASE("duplicate keys are errors, wherever they are", "[conf][loader]") {
    const auto result = load(kValid + "  p:\n    upstreams:\n      - url: \"http://other/\"\nscep:\n  public_url: x\n");
    CHECK(error_lines(result) ==
          std::vector<std::string>{"test.yaml:7:3: profiles.p: duplicate key (first written at line 4, column 3)",
                                   "test.yaml:10:1: scep: duplicate key (first written at line 1, column 1)"});

    const auto nested = load(R"(
scep:
  public_url: "http://a"
  public_url: "http://b"
profiles:
  p:
    upstreams:
      - url: "http://ndes/"
)");
    CHECK(error_lines(nested) ==
          std::vector<std::string>{
              "test.yaml:3:3: scep.public_url: duplicate key (first written at line 2, column 3)"});
}

TEST_CASE("missing required keys are reported at the section that lacks them", "[conf][loader]") {
    const auto no_profiles = load(R"(
scep:
  public_url: "http://scep.example.com"
)");
    CHECK(error_lines(no_profiles) == std::vector<std::string>{"test.yaml:1:1: profiles: missing required key"});

    const auto admin = load(kValid + "admin:\n  listen: \"127.0.0.1:9000\"\n");
    CHECK(error_lines(admin) ==
          std::vector<std::string>{"test.yaml:7:1: admin.bearer_token_file: missing required key"});

    const auto tls = load(R"(
scep:
  public_url: "http://scep.example.com"
  tls:
    key_file: /k
profiles:
  p:
    upstreams:
      - {}
)");
    CHECK(error_lines(tls) ==
          std::vector<std::string>{"test.yaml:3:3: scep.tls.cert_file: missing required key",
                                   "test.yaml:8:9: profiles.p.upstreams[0].url: missing required key"});
}

TEST_CASE("an empty file reports the required top-level keys", "[conf][loader]") {
    for (const char* text : {"", "# only a comment\n", "---\n"}) {
        INFO(text);
        const auto result = load(text);
        CHECK(error_lines(result) == std::vector<std::string>{"test.yaml: scep: missing required key",
                                                              "test.yaml: profiles: missing required key"});
    }
}

TEST_CASE("a top level that is not a mapping is an error", "[conf][loader]") {
    const auto result = load("- a\n- b\n");
    CHECK(error_lines(result) == std::vector<std::string>{"test.yaml:1:1: expected a mapping of keys"});
}

TEST_CASE("more than one YAML document is an error", "[conf][loader]") {
    const auto result = load(kValid + "---\nworkers: 2\n");
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].message == "only one YAML document is allowed");
    CHECK(result.errors[0].line == 8);
}

TEST_CASE("durations: good and bad values", "[conf][loader]") {
    CHECK(load(kValid + "limits:\n  idle_timeout: 1d\n").config->limits.idle_timeout == 24h);
    CHECK(load(kValid + "    ca_cache_ttl: 0s\n").config->profiles[0].ca_cache_ttl == 0ms);

    const auto bad = load(kValid + "limits:\n  header_timeout: 10\n  body_timeout: [1]\n  idle_timeout: 0s\n");
    CHECK(error_lines(bad) ==
          std::vector<std::string>{
              "test.yaml:8:19: limits.header_timeout: expected a duration like 500ms, 10s, 5m, 1h or 1d",
              "test.yaml:9:17: limits.body_timeout: expected a duration like 500ms, 10s, 5m, 1h or 1d",
              "test.yaml:10:17: limits.idle_timeout: expected a duration greater than 0",
          });
}

TEST_CASE("upstream certificates: refresh interval and mixed RA certificates", "[conf][loader]") {
    const auto defaults = load(kValid);
    REQUIRE(defaults.ok());
    CHECK(defaults.config->profiles[0].ca_refresh_interval == 1h);
    CHECK_FALSE(defaults.config->profiles[0].allow_mixed_ra);
    const auto set = load(kValid + "    ca_refresh_interval: 10m\n    allow_mixed_ra: true\n");
    REQUIRE(set.ok());
    CHECK(set.config->profiles[0].ca_refresh_interval == 10min);
    CHECK(set.config->profiles[0].allow_mixed_ra);
    // Every upstream is asked at most once a second.
    const auto too_often = load(kValid + "    ca_refresh_interval: 500ms\n");
    REQUIRE(too_often.errors.size() == 1);
    CHECK(too_often.errors[0].message.find("at least 1s") != std::string::npos);
}

TEST_CASE("integers: bounds are enforced and named in the message", "[conf][loader]") {
    CHECK(load(kValid + "limits:\n  max_headers: 8\n").ok());
    const auto bad = load(kValid + "limits:\n  max_headers: 7\n  max_connections: -1\n  max_body_bytes: 64k\n");
    CHECK(error_lines(bad) ==
          std::vector<std::string>{
              "test.yaml:8:16: limits.max_headers: expected an integer between 8 and 1000",
              "test.yaml:9:20: limits.max_connections: expected an integer between 1 and 1000000",
              "test.yaml:10:19: limits.max_body_bytes: expected an integer between 1024 and 16777216",
          });
}

TEST_CASE("per-client and per-token limits: defaults, values, bounds, unknown keys", "[conf][loader]") {
    const auto defaults = load(kValid);
    REQUIRE(defaults.ok());
    const auto& limits = defaults.config->limits;
    CHECK(limits.per_client.max_connections == 1000);
    CHECK(limits.per_client.requests_per_minute == 0);
    CHECK(limits.per_client.ipv4_prefix == 32);
    CHECK(limits.per_client.ipv6_prefix == 64);
    CHECK(limits.per_token.requests_per_minute == 0);
    CHECK(limits.send_timeout == std::chrono::seconds(30));

    const auto set = load(kValid +
                          "limits:\n  send_timeout: 2s\n  per_client: { max_connections: 0, requests_per_minute: 600,"
                          " request_burst: 50, ipv4_prefix: 24, ipv6_prefix: 48, table_size: 16 }\n"
                          "  per_token: { requests_per_minute: 10, request_burst: 5, table_size: 100 }\n");
    REQUIRE(set.ok());
    const auto& c = set.config->limits.per_client;
    CHECK((c.max_connections == 0 && c.requests_per_minute == 600 && c.request_burst == 50 && c.ipv4_prefix == 24 &&
           c.ipv6_prefix == 48 && c.table_size == 16));
    const auto& t = set.config->limits.per_token;
    CHECK((t.requests_per_minute == 10 && t.request_burst == 5 && t.table_size == 100));
    CHECK(set.config->limits.send_timeout == std::chrono::seconds(2));

    const auto bad = load(kValid +
                          "limits:\n  per_client:\n    ipv6_prefix: 31\n    ipv4_prefix: 33\n"
                          "    request_burst: 0\n    table_size: 15\n    burst: 3\n");
    CHECK(error_lines(bad) ==
          std::vector<std::string>{
              "test.yaml:9:18: limits.per_client.ipv6_prefix: expected an integer between 32 and 128",
              "test.yaml:10:18: limits.per_client.ipv4_prefix: expected an integer between 8 and 32",
              "test.yaml:11:20: limits.per_client.request_burst: expected an integer between 1 and 1000000",
              "test.yaml:12:17: limits.per_client.table_size: expected an integer between 16 and 16000000",
              error_lines(bad).back(),
          });
    CHECK(error_lines(bad).back().starts_with("test.yaml:13:5: limits.per_client.burst: unknown key"));
}

TEST_CASE("workers: auto, a count, or an error", "[conf][loader]") {
    CHECK(load(kValid + "workers: auto\n").config->workers == 0);
    CHECK(load(kValid + "workers: 1024\n").config->workers == 1024);
    for (const char* bad : {"0", "1025", "Auto", "two", "", "[2]"}) {
        INFO(bad);
        const auto result = load(kValid + "workers: " + bad + "\n");
        CHECK(error_for(result, "workers").message == "expected auto or an integer between 1 and 1024");
    }
}

TEST_CASE("booleans and enums accept only their words", "[conf][loader]") {
    CHECK(error_for(load(kValid + "log:\n  access_log: yes\n"), "log.access_log").message == "expected true or false");
    CHECK(error_for(load(kValid + "log:\n  format: xml\n"), "log.format").message == "expected one of: text, json");
    CHECK(error_for(load(kValid + "store:\n  on_error: maybe\n"), "store.on_error").message ==
          "expected one of: deny, allow");
    CHECK(error_for(load(kValid + "    challenge:\n      type: otp\n"), "profiles.p.challenge.type").message ==
          "expected one of: none, static, dynamic");
}

TEST_CASE("listen addresses: wildcard forms and errors", "[conf][loader]") {
    const auto star = load(kValid + "metrics:\n  listen: \"*:9100\"\n");
    REQUIRE(star.ok());
    CHECK(star.config->metrics.listen.host == "0.0.0.0");
    CHECK(star.config->metrics.listen.port == 9100);

    const auto bad = load(kValid + "metrics:\n  listen: \"localhost:9100\"\n");
    const auto e = error_for(bad, "metrics.listen");
    CHECK(e.line == 8);
    CHECK(e.column == 11);
    CHECK(e.message == "'localhost' is not an IP address (listen on an address, like 127.0.0.1:8080)");
}

TEST_CASE("wrong structure: a scalar for a section, a scalar for a list", "[conf][loader]") {
    CHECK(error_lines(load(kValid + "limits: 5\n")) ==
          std::vector<std::string>{"test.yaml:7:9: limits: expected a mapping of keys"});
    const auto list = load(R"(
scep:
  public_url: "http://scep.example.com"
profiles:
  p:
    upstreams: "http://ndes/"
)");
    CHECK(error_lines(list) ==
          std::vector<std::string>{"test.yaml:5:16: profiles.p.upstreams: expected a list with at least one entry"});
    const auto empty = load(R"(
scep:
  public_url: "http://scep.example.com"
profiles:
  p:
    upstreams: []
)");
    CHECK(error_for(empty, "profiles.p.upstreams").message == "expected a list with at least one entry");
    CHECK(error_for(load(kValid + "limits:\n  max_headers: {a: 1}\n"), "limits.max_headers").message ==
          "expected an integer between 8 and 1000");
}

TEST_CASE("bad upstream URLs are reported at the URL", "[conf][loader]") {
    struct Case {
        const char* url;
        const char* message;
    };
    const Case cases[] = {
        {"ftp://ndes/x", "expected an http:// or https:// URL"},
        {"http://svc:secret@ndes/x", "userinfo (user@) is not allowed in the URL; credentials belong in *_file keys"},
        {"http://ndes/x?operation=GetCACert", "a query (?...) is not allowed in the URL"},
        {"http:///x", "the URL has no host"},
        {"http://ndes:99999/x", "expected a port between 1 and 65535 in the URL"},
    };
    for (const auto& c : cases) {
        INFO(c.url);
        const auto result = load(std::string(R"(
scep:
  public_url: "http://scep.example.com"
profiles:
  p:
    upstreams:
      - url: "http://ok/"
      - url: ")") + c.url + "\"\n");
        CHECK(error_lines(result) ==
              std::vector<std::string>{std::string("test.yaml:7:14: profiles.p.upstreams[1].url: ") + c.message});
    }
}

TEST_CASE("public_url: trailing slash dropped, query rejected", "[conf][loader]") {
    const auto with_slash =
        load("scep:\n  public_url: \"https://scep.example.com/\"\n" + kValid.substr(kValid.find("profiles")));
    INFO(with_slash.error_text());
    REQUIRE(with_slash.ok());
    CHECK(with_slash.config->scep.public_url == "https://scep.example.com");

    const auto with_query =
        load("scep:\n  public_url: \"https://scep.example.com/?x=1\"\n" + kValid.substr(kValid.find("profiles")));
    CHECK(error_lines(with_query) ==
          std::vector<std::string>{"test.yaml:2:15: scep.public_url: a query (?...) is not allowed in the URL"});
}

TEST_CASE("profile names are restricted", "[conf][loader]") {
    for (const char* name :
         {"WiFi", "-wifi", "wi.fi", "a b", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd"}) {
        INFO(name);
        const auto result = load(std::string("scep:\n  public_url: \"http://s\"\nprofiles:\n  \"") + name +
                                 "\":\n    upstreams:\n      - url: \"http://ndes/\"\n");
        const auto e = error_for(result, std::string("profiles.") + name);
        CHECK(e.line == 4);
        CHECK(e.message.rfind("invalid profile name", 0) == 0);
    }
    const auto ok = load(std::string("scep:\n  public_url: \"http://s\"\nprofiles:\n  ") +
                         "0_a-b-abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefg" +
                         ":\n    upstreams:\n      - url: \"http://ndes/\"\n");
    INFO(ok.error_text());
    CHECK(ok.ok());
}

TEST_CASE("an empty profiles map is an error", "[conf][loader]") {
    const auto result = load("scep:\n  public_url: \"http://s\"\nprofiles: {}\n");
    CHECK(error_lines(result) ==
          std::vector<std::string>{"test.yaml:3:11: profiles: at least one profile is required"});
}

TEST_CASE("an unknown store backend names the compiled ones", "[conf][loader]") {
    const auto result = load(kValid + "store:\n  backend: mysql\n");
    CHECK(error_lines(result) ==
          std::vector<std::string>{"test.yaml:8:12: store.backend: unknown backend 'mysql' (have: sqlite, postgres)"});

    const auto sqlite_only = load_config_text(yaml(kValid), "x.yaml", LoadOptions{{"sqlite"}});
    CHECK(sqlite_only.ok());
    // The default backend is checked too, at the section or, without one, the file.
    const auto none_compiled = load_config_text(yaml(kValid), "x.yaml", LoadOptions{});
    CHECK(error_lines(none_compiled) ==
          std::vector<std::string>{"x.yaml: store.backend: unknown backend 'sqlite' (have: none)"});
    const auto default_missing =
        load_config_text(yaml(kValid + "store:\n  cache_ttl: 1s\n"), "x.yaml", LoadOptions{{"postgres"}});
    CHECK(error_lines(default_missing) ==
          std::vector<std::string>{"x.yaml:7:1: store.backend: unknown backend 'sqlite' (have: postgres)"});
}

TEST_CASE("a store backend's own settings are required when it is selected", "[conf][loader]") {
    const auto pg = load(kValid + "store:\n  backend: postgres\n");
    CHECK(error_lines(pg) ==
          std::vector<std::string>{
              "test.yaml:8:3: store.postgres.conninfo_file: required when store.backend is postgres"});
    const auto webhook =
        load_config_text(yaml(kValid + "store:\n  backend: webhook\n"), "test.yaml", LoadOptions{{"webhook"}});
    CHECK(error_for(webhook, "store.webhook.url").message == "required when store.backend is webhook");
}

TEST_CASE("store backend tuning keys are read, with defaults and bounds", "[conf][loader]") {
    const auto defaults = load(kValid);
    REQUIRE(defaults.ok());
    CHECK(defaults.config->store.postgres.pool_size == 4);
    CHECK(defaults.config->store.postgres.connect_timeout == 5s);
    CHECK(defaults.config->store.postgres.timeout == 2s);
    CHECK(defaults.config->store.webhook.concurrency == 8);
    CHECK(defaults.config->store.webhook.ca_file.empty());

    const auto tuned = load_config_text(yaml(kValid + R"(
store:
  backend: webhook
  postgres:
    conninfo_file: /etc/scepproxy/pg.conninfo
    pool_size: 16
    connect_timeout: 1500ms
    timeout: 750ms
  webhook:
    url: "https://mdm.example.com/check"
    ca_file: /etc/scepproxy/mdm-ca.pem
    concurrency: 32
    timeout: 3s
)"),
                                        "test.yaml", LoadOptions{{"sqlite", "postgres", "webhook"}});
    INFO(tuned.error_text());
    REQUIRE(tuned.ok());
    const StoreConfig& store = tuned.config->store;
    CHECK(store.postgres.pool_size == 16);
    CHECK(store.postgres.connect_timeout == 1500ms);
    CHECK(store.postgres.timeout == 750ms);
    CHECK(store.webhook.ca_file == "/etc/scepproxy/mdm-ca.pem");
    CHECK(store.webhook.concurrency == 32);
    CHECK(store.webhook.timeout == 3s);
    // The selected backend's files are checked at run time; the unselected one's are not.
    std::vector<std::string> keys;
    for (const auto& ref : tuned.referenced_files) keys.push_back(ref.key);
    CHECK(keys == std::vector<std::string>{"store.webhook.ca_file"});

    for (const char* bad :
         {"  postgres:\n    pool_size: 0\n", "  postgres:\n    pool_size: 65\n", "  webhook:\n    concurrency: 0\n",
          "  webhook:\n    concurrency: 257\n", "  postgres:\n    timeout: 0s\n"}) {
        const auto result = load(kValid + "store:\n" + bad);
        INFO(bad);
        CHECK(result.errors.size() == 1);
    }
}

TEST_CASE("challenge keys must match the challenge type", "[conf][loader]") {
    const auto static_without_file = load(kValid + "    challenge:\n      type: static\n");
    CHECK(error_lines(static_without_file) ==
          std::vector<std::string>{
              "test.yaml:8:7: profiles.p.challenge.password_file: required when challenge.type is static"});

    const auto dynamic_missing = load(kValid + "    challenge:\n      type: dynamic\n      password_file: /p\n");
    CHECK(error_for(dynamic_missing, "profiles.p.challenge.url").message == "required when challenge.type is dynamic");
    CHECK(error_for(dynamic_missing, "profiles.p.challenge.username").message ==
          "required when challenge.type is dynamic");

    const auto none_with_file = load(kValid + "    challenge:\n      password_file: /p\n");
    CHECK(error_lines(none_with_file) ==
          std::vector<std::string>{
              "test.yaml:8:7: profiles.p.challenge.password_file: not used when challenge.type is none"});

    const auto static_with_url =
        load(kValid + "    challenge:\n      type: static\n      password_file: /p\n      url: \"http://ndes/\"\n");
    CHECK(error_for(static_with_url, "profiles.p.challenge.url").message == "not used when challenge.type is static");
}

TEST_CASE("a dynamic challenge must outlive the token and pair its client certificate", "[conf][loader]") {
    const std::string dynamic = kValid + R"(
    challenge:
      type: dynamic
      url: "http://ndes/certsrv/mscep_admin/"
      username: svc
      password_file: /p
)";
    CHECK(load(dynamic).ok());
    const auto long_token = load(dynamic + "      lifetime: 30m\n    token_ttl: 31m\n");
    CHECK(error_for(long_token, "profiles.p.token_ttl").message ==
          "longer than challenge.lifetime (30m): the challenge would expire before the token");
    const auto half_pair = load(dynamic + "      client_cert_file: /c\n");
    CHECK(error_for(half_pair, "profiles.p.challenge.client_key_file").message == "required with client_cert_file");
}

TEST_CASE("a dynamic challenge's fetch limits have defaults, bounds, and apply to dynamic only", "[conf][loader]") {
    const std::string dynamic = kValid + R"(
    challenge:
      type: dynamic
      url: "http://ndes/certsrv/mscep_admin/"
      username: svc
      password_file: /p
)";
    const auto defaults = load(dynamic);
    REQUIRE(defaults.ok());
    CHECK(defaults.config->profiles[0].challenge.max_concurrent_fetches == 2);
    CHECK(defaults.config->profiles[0].challenge.queue_timeout == 5s);

    const auto set = load(dynamic + "      max_concurrent_fetches: 5\n      queue_timeout: 1m\n");
    REQUIRE(set.ok());
    CHECK(set.config->profiles[0].challenge.max_concurrent_fetches == 5);
    CHECK(set.config->profiles[0].challenge.queue_timeout == 1min);

    CHECK(error_for(load(dynamic + "      max_concurrent_fetches: 0\n"), "profiles.p.challenge.max_concurrent_fetches")
              .message == "expected an integer between 1 and 64");
    CHECK(error_for(load(dynamic + "      queue_timeout: 0s\n"), "profiles.p.challenge.queue_timeout").message ==
          "expected a duration greater than 0");
    const auto static_with_limit =
        load(kValid + "    challenge:\n      type: static\n      password_file: /p\n      max_concurrent_fetches: 3\n");
    CHECK(error_for(static_with_limit, "profiles.p.challenge.max_concurrent_fetches").message ==
          "not used when challenge.type is static");
}

TEST_CASE("profile timeouts and TLS settings are checked against each other", "[conf][loader]") {
    const auto slow_connect = load(kValid + "    connect_timeout: 1m\n    timeout: 30s\n");
    CHECK(error_lines(slow_connect) ==
          std::vector<std::string>{
              "test.yaml:7:5: profiles.p.connect_timeout: longer than timeout (30s), which includes the connect"});

    const auto tls_on_http = load(kValid + "    tls:\n      verify: false\n");
    CHECK(error_for(tls_on_http, "profiles.p.tls").message == "applies to https upstreams and this profile has none");

    const auto key_without_cert = load(R"(
scep:
  public_url: "http://scep.example.com"
profiles:
  p:
    upstreams:
      - url: "https://ndes/"
    tls:
      client_key_file: /k
)");
    CHECK(error_lines(key_without_cert) ==
          std::vector<std::string>{"test.yaml:8:7: profiles.p.tls.client_cert_file: required with client_key_file"});
}

TEST_CASE("listeners may not share an address", "[conf][loader]") {
    const auto same = load(kValid + "metrics:\n  listen: \"0.0.0.0:8080\"\n");
    CHECK(error_lines(same) ==
          std::vector<std::string>{
              "test.yaml:8:3: metrics.listen: address 0.0.0.0:8080 overlaps scep.listen (0.0.0.0:8080)"});

    // The scep default (0.0.0.0:8080) covers 127.0.0.1:8080; "::" covers IPv4 too.
    CHECK(error_for(load(kValid + "admin:\n  listen: \"127.0.0.1:8080\"\n  bearer_token_file: /t\n"), "admin.listen")
              .message == "address 127.0.0.1:8080 overlaps scep.listen (0.0.0.0:8080)");
    CHECK_FALSE(load(kValid + "metrics:\n  listen: \"[::]:8080\"\n").ok());

    // Different ports, different specific addresses, IPv4 wildcard vs IPv6 loopback, port 0: all fine.
    CHECK(load(kValid + "metrics:\n  listen: \"0.0.0.0:8081\"\n").ok());
    CHECK(load("scep:\n  listen: \"127.0.0.1:80\"\n  public_url: \"http://s\"\nmetrics:\n  listen: \"127.0.0.2:80\"\n" +
               kValid.substr(kValid.find("profiles")))
              .ok());
    CHECK(load(kValid + "metrics:\n  listen: \"[::1]:8080\"\n").ok());
    CHECK(load("scep:\n  listen: \"127.0.0.1:0\"\n  public_url: \"http://s\"\nmetrics:\n  listen: \"127.0.0.1:0\"\n" +
               kValid.substr(kValid.find("profiles")))
              .ok());
}

TEST_CASE("limits must agree with each other", "[conf][loader]") {
    const auto result = load(kValid + "limits:\n  max_request_line_bytes: 8192\n  max_header_bytes: 4096\n");
    CHECK(error_lines(result) ==
          std::vector<std::string>{"test.yaml:9:3: limits.max_header_bytes: must be at least max_request_line_bytes "
                                   "(8192): the request line counts towards the header bytes"});
}

TEST_CASE("max_buffered_bytes: default, bounds, room for one largest request", "[conf][loader]") {
    const auto defaults = load(kValid);
    REQUIRE(defaults.ok());
    CHECK(defaults.config->limits.max_buffered_bytes == 256u << 20);
    const auto set = load(kValid + "limits:\n  max_buffered_bytes: 1048576\n");
    REQUIRE(set.ok());
    CHECK(set.config->limits.max_buffered_bytes == 1u << 20);
    CHECK(error_lines(load(kValid + "limits:\n  max_buffered_bytes: 1048575\n")) ==
          std::vector<std::string>{
              "test.yaml:8:23: limits.max_buffered_bytes: expected an integer between 1048576 and 4294967295"});
    // 4 x (32768 + 1048576): one request's input buffer doubling as it grows, and a chunked body's decoding.
    CHECK(error_lines(load(kValid + "limits:\n  max_body_bytes: 1048576\n  max_buffered_bytes: 4194304\n")) ==
          std::vector<std::string>{"test.yaml:9:3: limits.max_buffered_bytes: must be at least 4 x (max_header_bytes "
                                   "+ max_body_bytes) = 4325376: room for the buffers of one largest request"});
}

TEST_CASE("all errors are reported together, in file order", "[conf][loader]") {
    const auto result = load(R"(
workers: many
scep:
  public_url: "ftp://scep.example.com"
limits:
  header_timeout: soon
store:
  backend: mysql
profiles:
  p:
    upstreams:
      - url: "http://ndes/?x"
    colour: blue
)");
    CHECK_FALSE(result.ok());
    CHECK(result.config == nullptr);
    CHECK(error_lines(result) ==
          std::vector<std::string>{
              "test.yaml:1:10: workers: expected auto or an integer between 1 and 1024",
              "test.yaml:3:15: scep.public_url: expected an http:// or https:// URL",
              "test.yaml:5:19: limits.header_timeout: expected a duration like 500ms, 10s, 5m, 1h or 1d",
              "test.yaml:7:12: store.backend: unknown backend 'mysql' (have: sqlite, postgres)",
              "test.yaml:11:14: profiles.p.upstreams[0].url: a query (?...) is not allowed in the URL",
              "test.yaml:12:5: profiles.p.colour: unknown key (known keys: upstreams, tls, health_check, "
              "connect_timeout, timeout, "
              "max_idle_connections, max_response_bytes, ca_cache_ttl, ca_refresh_interval, allow_mixed_ra, token_ttl, "
              "allow_get_cert, allow_get_crl, "
              "release_on_failure, advertise_post_pki_operation, challenge)",
          });
    CHECK(result.error_text() == error_lines(result)[0] + "\n" + error_lines(result)[1] + "\n" +
                                     error_lines(result)[2] + "\n" + error_lines(result)[3] + "\n" +
                                     error_lines(result)[4] + "\n" + error_lines(result)[5] + "\n");
}

TEST_CASE("key positions are kept for every key written", "[conf][loader]") {
    const auto result = load(kValid);
    REQUIRE(result.ok());
    const auto url = result.position_of("profiles.p.upstreams[0].url");
    REQUIRE(url);
    CHECK(url->line == 6);
    CHECK(url->column == 9);
    const auto p = result.position_of("profiles.p");
    REQUIRE(p);
    CHECK(p->line == 4);
    CHECK(p->column == 3);
    CHECK_FALSE(result.position_of("scep.listen"));
}

TEST_CASE("a missing config file is a clear error without a position", "[conf][loader]") {
    const auto result = load_config_file("/nonexistent/scepproxy.yaml", kOptions);
    CHECK_FALSE(result.ok());
    CHECK(error_lines(result) ==
          std::vector<std::string>{"/nonexistent/scepproxy.yaml: cannot read config file: No such file or directory"});
    const auto directory = load_config_file("/", kOptions);
    CHECK(error_lines(directory) == std::vector<std::string>{"/: cannot read config file: it is a directory"});
}

TEST_CASE("ConfigError formats the parts it has", "[conf][loader]") {
    CHECK(ConfigError{"f.yaml", 3, 7, "a.b", "bad"}.to_string() == "f.yaml:3:7: a.b: bad");
    CHECK(ConfigError{"f.yaml", 0, 0, "a.b", "bad"}.to_string() == "f.yaml: a.b: bad");
    CHECK(ConfigError{"f.yaml", 2, 1, "", "bad"}.to_string() == "f.yaml:2:1: bad");
}

TEST_CASE("check_referenced_files reports unreadable files at the key that names them", "[conf][loader]") {
    char dir_template[] = "/tmp/scepproxy-conf-test-XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    const std::filesystem::path dir(dir_template);
    std::ofstream(dir / "admin.token") << "secret\n";
    std::filesystem::create_directory(dir / "keys");
    std::ofstream(dir / "scepproxy.yaml") << yaml(R"(
scep:
  public_url: "http://scep.example.com"
  tls:
    cert_file: missing.crt
    key_file: keys
admin:
  bearer_token_file: admin.token
store:
  postgres:
    conninfo_file: not-used-by-sqlite
profiles:
  p:
    upstreams:
      - url: "http://ndes/"
)");
    const auto result = load_config_file((dir / "scepproxy.yaml").string(), kOptions);
    INFO(result.error_text());
    REQUIRE(result.ok());
    std::vector<std::string> keys;
    for (const auto& ref : result.referenced_files) keys.push_back(ref.key);
    CHECK(keys == std::vector<std::string>{"scep.tls.cert_file", "scep.tls.key_file", "admin.bearer_token_file"});

    const auto errors = check_referenced_files(result);
    const std::string file = (dir / "scepproxy.yaml").string();
    std::vector<std::string> lines;
    for (const auto& e : errors) lines.push_back(e.to_string());
    CHECK(lines == std::vector<std::string>{
                       file + ":4:5: scep.tls.cert_file: cannot read '" + (dir / "missing.crt").string() +
                           "': No such file or directory",
                       file + ":5:5: scep.tls.key_file: '" + (dir / "keys").string() + "' is not a regular file",
                   });
    std::filesystem::remove_all(dir);
}

TEST_CASE("broken input that made yaml-cpp's LoadAll loop for ever returns errors", "[config_loader]") {
    // yaml-cpp 0.7's LoadAll never returned on ",a" (found by the config fuzz target).
    for (const char* text : {",a", ",", "a: 1\n,b"}) {
        INFO(text);
        const LoadResult result = load_config_text(text, "broken.yaml", {{"sqlite"}});
        CHECK_FALSE(result.ok());
        CHECK_FALSE(result.errors.empty());
    }
}

TEST_CASE("a second YAML document with content is an error, an empty one is not", "[config_loader]") {
    const std::string config = "scep: {}\n---\nfoo: 1\n";
    const LoadResult two = load_config_text(config, "two.yaml", {{"sqlite"}});
    bool found = false;
    for (const auto& error : two.errors)
        if (error.message == "only one YAML document is allowed") found = error.line == 3 && error.column == 1;
    CHECK(found);
    const LoadResult trailing = load_config_text("scep: {}\n---\n", "trailing.yaml", {{"sqlite"}});
    for (const auto& error : trailing.errors) CHECK(error.message != "only one YAML document is allowed");
}

TEST_CASE("upstreams are named host:port unless named, and health checks are off unless configured", "[conf][loader]") {
    const auto plain = load(kValid);
    REQUIRE(plain.ok());
    const ProfileConfig& p = plain.config->profiles[0];
    CHECK(p.upstreams[0].name == "ndes:80");
    CHECK_FALSE(p.health_check);
    CHECK(p.max_response_bytes == 4u << 20);

    const auto result = load(R"(
scep:
  public_url: "http://scep.example.com"
profiles:
  p:
    upstreams:
      - name: ndes-a
        url: "https://ndes1/certsrv/mscep/mscep.dll"
      - url: "http://[::1]:8080/scep"
        name: b.local:1
    health_check: { interval: 2s, timeout: 500ms, fall: 2, rise: 4 }
    max_response_bytes: 2048
)");
    INFO(result.error_text());
    REQUIRE(result.ok());
    const ProfileConfig& named = result.config->profiles[0];
    CHECK(named.upstreams[0].name == "ndes-a");
    CHECK(named.upstreams[0].host == "ndes1");
    CHECK(named.upstreams[1].name == "b.local:1");
    CHECK(named.upstreams[1].port == 8080);
    REQUIRE(named.health_check);
    CHECK(named.health_check->interval == 2s);
    CHECK(named.health_check->timeout == 500ms);
    CHECK(named.health_check->fall == 2);
    CHECK(named.health_check->rise == 4);
    CHECK(named.max_response_bytes == 2048);

    const auto defaults = load(kValid + "    health_check:\n");
    REQUIRE(defaults.ok());
    CHECK(defaults.config->profiles[0].health_check->interval == HealthCheckConfig{}.interval);
    CHECK(defaults.config->profiles[0].health_check->fall == 3);
}

TEST_CASE("upstream names are unique, plain and bounded, and health check values are checked", "[conf][loader]") {
    const auto twice = load(kValid + "      - url: \"http://ndes:80/other\"\n");
    CHECK(error_for(twice, "profiles.p.upstreams[1].name").message ==
          "upstream name 'ndes:80' already used by upstreams[0] (give each upstream its own `name:`)");
    CHECK(error_for(load(kValid + "        name: \"a b\"\n"), "profiles.p.upstreams[0].name").message ==
          "invalid upstream name: use 1 to 63 of A-Z, a-z, 0-9, '_', '-', '.' and ':'");
    CHECK(error_for(load(kValid + "    health_check: { interval: 1s, timeout: 2s }\n"),
                    "profiles.p.health_check.timeout")
              .message == "longer than health_check.interval (1s)");
    CHECK(error_for(load(kValid + "    health_check: { fall: 0 }\n"), "profiles.p.health_check.fall").message ==
          "expected an integer between 1 and 100");
    CHECK(error_for(load(kValid + "    health_check: { interval: 10ms }\n"), "profiles.p.health_check.interval")
              .message == "expected a duration of at least 100ms");
    CHECK(error_for(load(kValid + "    max_response_bytes: 10\n"), "profiles.p.max_response_bytes").message ==
          "expected an integer between 1024 and 67108864");
    std::string many = kValid;
    for (int i = 1; i <= 16; ++i) many += "      - url: \"http://ndes" + std::to_string(i) + "/\"\n";
    CHECK(error_for(load(many), "profiles.p.upstreams").message == "at most 16 upstreams per profile");
}
