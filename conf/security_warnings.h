// Security warnings: settings that are valid but silently weaken security (no TLS checks, secrets in clear, open files).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace scepproxy::conf {

// One setting that works but weakens security. Not an error: the proxy runs with it.
struct SecurityWarning {
    std::string key;      // dotted path, as in ConfigError, e.g. "profiles.wifi.tls.verify"
    std::string message;  // what is exposed and what to do about it
};

// Every finding in `config`, in a fixed order (listeners, store, profiles in file order, secret
// files). Reads the PostgreSQL connection string and stats the secret files the config names;
// a file that can't be read gives no warning (`check` and start-up report it as an error).
// Checked:
//   - profiles.P.tls.verify and profiles.P.challenge.verify set to false;
//   - a dynamic challenge's url over http:// (basic and NTLM authentication);
//   - store.webhook.url over http:// with a bearer token;
//   - admin.listen on an address other than loopback without admin.tls;
//   - store.postgres.conninfo_file connecting to a host that is not local (Unix socket,
//     localhost, 127.0.0.0/8, ::1) without sslmode=verify-full (PGHOST, PGHOSTADDR and
//     PGSSLMODE fill in what the connection string leaves out, as libpq does);
//   - a secret or private key file that other users can read or write, or its group can write.
std::vector<SecurityWarning> find_security_warnings(const Config& config);

// What a libpq connection string (keyword=value pairs or a postgresql:// URI) says about where
// and how it connects. Unset options are nullopt (libpq then takes PGHOST, PGHOSTADDR, PGSSLMODE).
struct PostgresTarget {
    bool parsed = false;                  // false: not a connection string libpq would take
    std::optional<std::string> host;      // as written: comma-separated, a Unix socket directory or a name
    std::optional<std::string> hostaddr;  // comma-separated numeric addresses
    std::optional<std::string> sslmode;   // "ssl=true" (the JDBC spelling) reads as "require"
};

// Exposed for unit tests, like the two below.
PostgresTarget parse_postgres_conninfo(std::string_view conninfo);

// Where the connection goes, one entry per host: its hostaddr when given, else its host;
// "" is libpq's default, the Unix socket.
std::vector<std::string> connection_hosts(const PostgresTarget& target);

// A host that a connection to stays on this machine: a Unix socket path, "localhost",
// 127.0.0.0/8, ::1 (and ::ffff:127.0.0.0/104).
bool is_local_host(std::string_view host);

}  // namespace scepproxy::conf
