// Loads the YAML config file: one table per section drives both parsing and unknown-key detection.
//
// The schema lives in the *_keys() tables below (name, value type, bounds, required, needs restart);
// defaults live in conf/config.h; every key is documented in conf/scepproxy.example.yaml.
// Reading never stops at the first error: each bad value is reported, its default kept, and the
// document walked to the end, then the cross-field checks run.
#include "conf/config_loader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "conf/config_values.h"

namespace scepproxy::conf {
namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxConfigFileBytes = 4 * 1024 * 1024;
// Enough to fix a file in one go; bounds the work on a file built from aliases of aliases.
constexpr size_t kMaxErrors = 100;

Position position_of_mark(const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
    return {mark.line + 1, mark.column + 1};  // yaml-cpp counts from 0
}

std::string join_key(const std::string& parent, std::string_view name) {
    return parent.empty() ? std::string(name) : parent + "." + std::string(name);
}

std::string join_names(const std::vector<std::string_view>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

// A value being read: its dotted path, its node, and where errors about it point.
struct Item {
    std::string path;
    YAML::Node node;
    Position position;      // of the value; of the key when the value is empty
    Position key_position;  // of the key (or list element) itself
};

// Collects errors, key positions and file references while the tables read the document.
class Reader {
public:
    Reader(const std::string& source_name, const LoadOptions& options, LoadResult& result)
        : file_(source_name),
          base_dir_(std::filesystem::path(source_name).parent_path()),
          options_(options),
          result_(result) {}

    const LoadOptions& options() const { return options_; }

    void error(Position at, std::string key, std::string message) {
        if (result_.errors.size() >= kMaxErrors) {
            gave_up_ = true;
            return;
        }
        result_.errors.push_back({file_, at.line, at.column, std::move(key), std::move(message)});
    }

    // True once kMaxErrors were reported: the readers stop walking the document.
    bool gave_up() const { return gave_up_; }

    void record_position(const std::string& key, Position at) { result_.key_positions[key] = at; }
    bool has(const std::string& key) const { return result_.key_positions.count(key) != 0; }

    // Where `key` is written or, for an absent key, its nearest written parent.
    Position nearest_position(std::string key) const {
        while (!key.empty()) {
            if (const auto it = result_.key_positions.find(key); it != result_.key_positions.end()) return it->second;
            const size_t cut = key.find_last_of(".[");
            key.resize(cut == std::string::npos ? 0 : cut);
        }
        return {};
    }

    void record_file(const std::string& key, const std::string& path) {
        result_.referenced_files.push_back({key, path});
    }

    // Relative paths are taken from the config file's directory, not the daemon's working directory.
    std::string resolve_path(const std::string& path) const {
        const std::filesystem::path p(path);
        if (p.is_absolute() || base_dir_.empty()) return path;
        return (base_dir_ / p).lexically_normal().string();
    }

    // The text of a scalar value; "" for an empty value, a list or a mapping, which every
    // value syntax rejects, so each parser reports the mistake in its own words.
    static std::string text(const Item& item) { return item.node.IsScalar() ? item.node.Scalar() : std::string(); }

    // A parser's value, or nullopt after reporting its error.
    template <class T>
    std::optional<T> take(const Item& item, Parsed<T> parsed) {
        if (!parsed.value) error(item.position, item.path, std::move(parsed.error));
        return std::move(parsed.value);
    }

private:
    std::string file_;
    std::filesystem::path base_dir_;
    const LoadOptions& options_;
    LoadResult& result_;
    bool gave_up_ = false;
};

// ---- value readers: one per value type of the schema ----

std::optional<uint32_t> read_integer(Reader& r, const Item& item, uint32_t min, uint32_t max) {
    return r.take(item, parse_integer(Reader::text(item), min, max));
}

std::optional<Duration> read_duration(Reader& r, const Item& item, Duration min) {
    const auto value = r.take(item, parse_duration(Reader::text(item)));
    if (value && *value < min) {
        r.error(item.position, item.path,
                min == 1ms ? "expected a duration greater than 0"
                           : "expected a duration of at least " + format_duration(min));
        return std::nullopt;
    }
    return value;
}

std::optional<ListenAddress> read_listen(Reader& r, const Item& item) {
    return r.take(item, parse_listen_address(Reader::text(item)));
}

std::optional<UpstreamConfig> read_url(Reader& r, const Item& item) {
    return r.take(item, parse_http_url(Reader::text(item)));
}

// Upstream names are log fields and metric labels: short and plain.
std::optional<std::string> read_upstream_name(Reader& r, const Item& item) {
    const std::string text = Reader::text(item);
    const auto plain = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '.' || c == ':';
    };
    if (!text.empty() && text.size() <= 63 && std::all_of(text.begin(), text.end(), plain)) return text;
    r.error(item.position, item.path, "invalid upstream name: use 1 to 63 of A-Z, a-z, 0-9, '_', '-', '.' and ':'");
    return std::nullopt;
}

// Reads one of `choices` (a fixed word, like "auto" or "true"), reporting `expected` otherwise.
template <class V>
std::optional<V> read_choice(Reader& r, const Item& item, const std::vector<std::pair<std::string_view, V>>& choices,
                             const std::string& expected) {
    const std::string text = Reader::text(item);
    for (const auto& [word, value] : choices)
        if (word == text) return value;
    r.error(item.position, item.path, expected);
    return std::nullopt;
}

std::optional<bool> read_bool(Reader& r, const Item& item) {
    return read_choice<bool>(r, item, {{"true", true}, {"false", false}}, "expected true or false");
}

std::optional<std::string> read_string(Reader& r, const Item& item) {
    std::string text = Reader::text(item);
    if (!text.empty()) return text;
    r.error(item.position, item.path, "expected a non-empty string");
    return std::nullopt;
}

std::optional<std::string> read_path(Reader& r, const Item& item) {
    const auto text = read_string(r, item);
    if (!text) return std::nullopt;
    return r.resolve_path(*text);
}

// Why `backend` cannot be used, or nullopt when it is compiled in.
std::optional<std::string> unknown_backend(const std::string& backend, const LoadOptions& options) {
    const auto& have = options.store_backends;
    if (std::find(have.begin(), have.end(), backend) != have.end()) return std::nullopt;
    std::string names;
    for (const auto& name : have) names += (names.empty() ? "" : ", ") + name;
    return "unknown backend '" + backend + "' (have: " + (names.empty() ? "none" : names) + ")";
}

std::optional<std::string> read_store_backend(Reader& r, const Item& item) {
    auto backend = read_string(r, item);
    if (!backend) return std::nullopt;
    if (const auto why = unknown_backend(*backend, r.options())) {
        r.error(item.position, item.path, *why);
        return std::nullopt;
    }
    return backend;
}

std::optional<uint32_t> read_workers(Reader& r, const Item& item) {
    const std::string text = Reader::text(item);
    if (text == "auto") return 0;  // resolved to the CPU count by the daemon
    if (const auto n = parse_integer(text, 1, 1024).value) return n;
    r.error(item.position, item.path, "expected auto or an integer between 1 and 1024");
    return std::nullopt;
}

template <class E>
using EnumNames = std::vector<std::pair<std::string_view, E>>;

template <class E>
std::optional<E> read_enum(Reader& r, const Item& item, const EnumNames<E>& names) {
    std::vector<std::string_view> spelled;
    for (const auto& [name, value] : names) spelled.push_back(name);
    return read_choice(r, item, names, "expected one of: " + join_names(spelled));
}

// ---- the schema: a key table per section ----

template <class T>
struct Key {
    using ReadFn = std::function<void(Reader&, const Item&, T&)>;
    Key(std::string_view key_name, ReadFn read_value) : name(key_name), read(std::move(read_value)) {}

    std::string_view name;
    ReadFn read;
    bool required = false;
    bool needs_restart = false;
    // For sections and lists: the keys below this one, paths relative to it (".cert_file", "[].url").
    std::function<std::vector<KeyInfo>()> children;
};

template <class T>
using KeyTable = std::vector<Key<T>>;

template <class T>
using TableFn = const KeyTable<T>& (*)();

template <class T>
Key<T> required(Key<T> key) {
    key.required = true;
    return key;
}

template <class T>
Key<T> needs_restart(Key<T> key) {
    key.needs_restart = true;
    return key;
}

// A key whose value is read by `read_value` (returning an optional) into `member`.
template <class T, class V, class ReadValue>
Key<T> value_key(std::string_view name, V T::*member, ReadValue read_value) {
    return {name, [=](Reader& r, const Item& item, T& target) {
                if (auto value = read_value(r, item)) target.*member = std::move(*value);
            }};
}

template <class T>
Key<T> integer_key(std::string_view name, uint32_t T::*member, uint32_t min, uint32_t max) {
    return value_key(name, member, [=](Reader& r, const Item& item) { return read_integer(r, item, min, max); });
}

template <class T>
Key<T> duration_key(std::string_view name, Duration T::*member, Duration min = 1ms) {
    return value_key(name, member, [=](Reader& r, const Item& item) { return read_duration(r, item, min); });
}

template <class T>
Key<T> bool_key(std::string_view name, bool T::*member) {
    return value_key(name, member, read_bool);
}

template <class T>
Key<T> string_key(std::string_view name, std::string T::*member) {
    return value_key(name, member, read_string);
}

template <class T, class E>
Key<T> enum_key(std::string_view name, E T::*member, EnumNames<E> names) {
    return value_key(name, member, [=](Reader& r, const Item& item) { return read_enum(r, item, names); });
}

template <class T>
Key<T> listen_key(std::string_view name, ListenAddress T::*member) {
    return needs_restart(value_key(name, member, read_listen));
}

// An http(s) URL kept as written.
template <class T>
Key<T> url_key(std::string_view name, std::string T::*member) {
    return value_key(name, member, [](Reader& r, const Item& item) -> std::optional<std::string> {
        if (auto url = read_url(r, item)) return url->url;
        return std::nullopt;
    });
}

// A path we open later (database file): resolved, not checked.
template <class T>
Key<T> path_key(std::string_view name, std::string T::*member) {
    return value_key(name, member, read_path);
}

// A path to a file that must exist when the daemon starts (secrets, certificates):
// recorded for check_referenced_files().
template <class T>
Key<T> file_key(std::string_view name, std::string T::*member) {
    return {name, [=](Reader& r, const Item& item, T& target) {
                if (auto path = read_path(r, item)) {
                    target.*member = *path;
                    r.record_file(item.path, *path);
                }
            }};
}

template <class T>
std::vector<KeyInfo> child_keys(const std::string& prefix, const KeyTable<T>& table) {
    std::vector<KeyInfo> out;
    for (const auto& key : table) {
        const std::string path = prefix + std::string(key.name);
        out.push_back({path, key.needs_restart});
        if (key.children)
            for (const auto& child : key.children()) out.push_back({path + child.path, child.needs_restart});
    }
    return out;
}

// ---- suggestions for unknown keys ----

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string unknown_key_message(std::string_view name, const std::vector<std::string_view>& known) {
    std::string_view closest;
    size_t best = 3;  // suggest only within two edits: further away is a guess
    if (name.size() <= 64) {
        for (const auto& candidate : known) {
            const size_t distance = edit_distance(name, candidate);
            if (distance < best && distance < candidate.size()) {
                best = distance;
                closest = candidate;
            }
        }
    }
    if (!closest.empty()) return "unknown key (did you mean '" + std::string(closest) + "'?)";
    return "unknown key (known keys: " + join_names(known) + ")";
}

// Calls on_entry(entry, name) for each key of the mapping `item`, after recording its position;
// non-scalar and duplicate keys are reported and skipped.
template <class OnEntry>
void for_each_entry(Reader& r, const Item& item, OnEntry on_entry) {
    std::map<std::string, Position> first_seen;
    for (const auto& pair : item.node) {
        if (r.gave_up()) return;
        const Position key_position = position_of_mark(pair.first.Mark());
        if (!pair.first.IsScalar()) {
            r.error(key_position, item.path, "expected a key name, found a list or mapping");
            continue;
        }
        const std::string name = pair.first.Scalar();
        const std::string path = join_key(item.path, name);
        if (const auto it = first_seen.find(name); it != first_seen.end()) {
            r.error(key_position, path,
                    "duplicate key (first written at line " + std::to_string(it->second.line) + ", column " +
                        std::to_string(it->second.column) + ")");
            continue;
        }
        first_seen.emplace(name, key_position);
        r.record_position(path, key_position);
        const Position value_position = pair.second.IsNull() ? key_position : position_of_mark(pair.second.Mark());
        on_entry(Item{path, pair.second, value_position, key_position}, name);
    }
}

// Reads the mapping `item` with `table` into `target`. An empty value (`admin:`) is an empty section.
template <class T>
void read_section(Reader& r, const Item& item, const KeyTable<T>& table, T& target) {
    if (!item.node.IsNull()) {
        if (!item.node.IsMap()) {
            r.error(item.position, item.path, "expected a mapping of keys");
            return;
        }
        for_each_entry(r, item, [&](const Item& entry, const std::string& name) {
            const auto key = std::find_if(table.begin(), table.end(), [&](const Key<T>& k) { return k.name == name; });
            if (key == table.end()) {
                std::vector<std::string_view> known;
                for (const auto& k : table) known.push_back(k.name);
                r.error(entry.key_position, entry.path, unknown_key_message(name, known));
                return;
            }
            key->read(r, entry, target);
        });
    }
    for (const auto& key : table)
        if (key.required && !r.has(join_key(item.path, key.name)))
            r.error(item.key_position, join_key(item.path, key.name), "missing required key");
}

template <class T, class S>
Key<T> section_key(std::string_view name, S T::*member, TableFn<S> table) {
    Key<T> key{name, [=](Reader& r, const Item& item, T& target) { read_section(r, item, table(), target.*member); }};
    key.children = [=] { return child_keys(".", table()); };
    return key;
}

// A section that is absent (nullopt) unless written.
template <class T, class S>
Key<T> optional_section_key(std::string_view name, std::optional<S> T::*member, TableFn<S> table) {
    Key<T> key{name, [=](Reader& r, const Item& item, T& target) {
                   read_section(r, item, table(), (target.*member).emplace());
               }};
    key.children = [=] { return child_keys(".", table()); };
    return key;
}

// A section whose presence turns its listener on (admin, metrics).
template <class T, class S>
Key<T> enabling_section_key(std::string_view name, S T::*member, TableFn<S> table) {
    Key<T> key = section_key(name, member, table);
    auto read = key.read;
    key.read = [=](Reader& r, const Item& item, T& target) {
        (target.*member).enabled = true;
        read(r, item, target);
    };
    return needs_restart(key);
}

template <class T, class E>
Key<T> list_key(std::string_view name, std::vector<E> T::*member, TableFn<E> table) {
    Key<T> key{name, [=](Reader& r, const Item& item, T& target) {
                   if (!item.node.IsSequence() || item.node.size() == 0) {
                       r.error(item.position, item.path, "expected a list with at least one entry");
                       return;
                   }
                   size_t index = 0;
                   for (const auto& element : item.node) {
                       if (r.gave_up()) return;
                       const Position at = element.IsNull() ? item.position : position_of_mark(element.Mark());
                       const Item entry{item.path + "[" + std::to_string(index++) + "]", element, at, at};
                       r.record_position(entry.path, at);
                       read_section(r, entry, table(), (target.*member).emplace_back());
                   }
               }};
    key.children = [=] { return child_keys("[].", table()); };
    return key;
}

const KeyTable<ServerTlsConfig>& server_tls_keys() {
    static const KeyTable<ServerTlsConfig> keys{
        required(file_key("cert_file", &ServerTlsConfig::cert_file)),
        required(file_key("key_file", &ServerTlsConfig::key_file)),
        file_key("client_ca_file", &ServerTlsConfig::client_ca_file),
    };
    return keys;
}

const KeyTable<ScepConfig>& scep_keys() {
    static const KeyTable<ScepConfig> keys{
        listen_key("listen", &ScepConfig::listen),
        // Stored without trailing '/', so scep_url is public_url + "/scep/" + token.
        required(value_key("public_url", &ScepConfig::public_url,
                           [](Reader& r, const Item& item) -> std::optional<std::string> {
                               auto url = read_url(r, item);
                               if (!url) return std::nullopt;
                               while (url->url.back() == '/') url->url.pop_back();
                               return url->url;
                           })),
        optional_section_key("tls", &ScepConfig::tls, server_tls_keys),
    };
    return keys;
}

const KeyTable<AdminConfig>& admin_keys() {
    static const KeyTable<AdminConfig> keys{
        listen_key("listen", &AdminConfig::listen),
        required(file_key("bearer_token_file", &AdminConfig::bearer_token_file)),
        optional_section_key("tls", &AdminConfig::tls, server_tls_keys),
    };
    return keys;
}

const KeyTable<MetricsConfig>& metrics_keys() {
    static const KeyTable<MetricsConfig> keys{
        listen_key("listen", &MetricsConfig::listen),
    };
    return keys;
}

const KeyTable<ClientLimitsConfig>& client_limits_keys() {
    static const KeyTable<ClientLimitsConfig> keys{
        integer_key("max_connections", &ClientLimitsConfig::max_connections, 0, 1'000'000),          // 0: no limit
        integer_key("requests_per_minute", &ClientLimitsConfig::requests_per_minute, 0, 6'000'000),  // 0: no limit
        integer_key("request_burst", &ClientLimitsConfig::request_burst, 1, 1'000'000),
        integer_key("ipv4_prefix", &ClientLimitsConfig::ipv4_prefix, 8, 32),
        integer_key("ipv6_prefix", &ClientLimitsConfig::ipv6_prefix, 32, 128),
        integer_key("table_size", &ClientLimitsConfig::table_size, 16, 16'000'000),
    };
    return keys;
}

const KeyTable<TokenLimitsConfig>& token_limits_keys() {
    static const KeyTable<TokenLimitsConfig> keys{
        integer_key("requests_per_minute", &TokenLimitsConfig::requests_per_minute, 0, 6'000'000),  // 0: no limit
        integer_key("request_burst", &TokenLimitsConfig::request_burst, 1, 1'000'000),
        integer_key("table_size", &TokenLimitsConfig::table_size, 16, 16'000'000),
    };
    return keys;
}

const KeyTable<LimitsConfig>& limits_keys() {
    static const KeyTable<LimitsConfig> keys{
        needs_restart(integer_key("max_connections", &LimitsConfig::max_connections, 1, 1'000'000)),
        integer_key("max_request_line_bytes", &LimitsConfig::max_request_line_bytes, 256, 1 << 20),
        integer_key("max_header_bytes", &LimitsConfig::max_header_bytes, 1024, 1 << 20),
        integer_key("max_headers", &LimitsConfig::max_headers, 8, 1000),
        integer_key("max_body_bytes", &LimitsConfig::max_body_bytes, 1024, 16 << 20),
        integer_key("max_buffered_bytes", &LimitsConfig::max_buffered_bytes, 1 << 20, 4'294'967'295u),
        duration_key("header_timeout", &LimitsConfig::header_timeout),
        duration_key("body_timeout", &LimitsConfig::body_timeout),
        duration_key("idle_timeout", &LimitsConfig::idle_timeout),
        duration_key("send_timeout", &LimitsConfig::send_timeout),
        duration_key("shutdown_timeout", &LimitsConfig::shutdown_timeout),
        needs_restart(section_key("per_client", &LimitsConfig::per_client, client_limits_keys)),
        needs_restart(section_key("per_token", &LimitsConfig::per_token, token_limits_keys)),
    };
    return keys;
}

const KeyTable<LogConfig>& log_keys() {
    static const KeyTable<LogConfig> keys{
        needs_restart(enum_key("format", &LogConfig::format,
                               EnumNames<LogFormat>{{"text", LogFormat::text}, {"json", LogFormat::json}})),
        bool_key("access_log", &LogConfig::access_log),
    };
    return keys;
}

const KeyTable<SqliteStoreConfig>& sqlite_keys() {
    static const KeyTable<SqliteStoreConfig> keys{
        path_key("path", &SqliteStoreConfig::path),
    };
    return keys;
}

const KeyTable<PostgresStoreConfig>& postgres_keys() {
    static const KeyTable<PostgresStoreConfig> keys{
        file_key("conninfo_file", &PostgresStoreConfig::conninfo_file),
        integer_key("pool_size", &PostgresStoreConfig::pool_size, 1, 64),
        duration_key("connect_timeout", &PostgresStoreConfig::connect_timeout),
        duration_key("timeout", &PostgresStoreConfig::timeout),
    };
    return keys;
}

const KeyTable<WebhookStoreConfig>& webhook_keys() {
    static const KeyTable<WebhookStoreConfig> keys{
        url_key("url", &WebhookStoreConfig::url),
        file_key("bearer_token_file", &WebhookStoreConfig::bearer_token_file),
        file_key("ca_file", &WebhookStoreConfig::ca_file),
        duration_key("timeout", &WebhookStoreConfig::timeout),
        integer_key("concurrency", &WebhookStoreConfig::concurrency, 1, 256),
    };
    return keys;
}

const KeyTable<StoreConfig>& store_keys() {
    static const KeyTable<StoreConfig> keys{
        value_key("backend", &StoreConfig::backend, read_store_backend),
        section_key("sqlite", &StoreConfig::sqlite, sqlite_keys),
        section_key("postgres", &StoreConfig::postgres, postgres_keys),
        section_key("webhook", &StoreConfig::webhook, webhook_keys),
        duration_key("cache_ttl", &StoreConfig::cache_ttl, 0ms),  // 0: no cache
        enum_key("on_error", &StoreConfig::on_error,
                 EnumNames<StoreErrorPolicy>{{"deny", StoreErrorPolicy::deny}, {"allow", StoreErrorPolicy::allow}}),
    };
    return keys;
}

const KeyTable<UpstreamConfig>& upstream_keys() {
    static const KeyTable<UpstreamConfig> keys{
        required(Key<UpstreamConfig>{"url",
                                     [](Reader& r, const Item& item, UpstreamConfig& target) {
                                         auto url = read_url(r, item);
                                         if (!url) return;
                                         if (!target.name.empty())
                                             url->name = std::move(target.name);  // `name:` came first
                                         target = std::move(*url);
                                     }}),
        value_key("name", &UpstreamConfig::name, read_upstream_name),
    };
    return keys;
}

const KeyTable<HealthCheckConfig>& health_check_keys() {
    static const KeyTable<HealthCheckConfig> keys{
        duration_key("interval", &HealthCheckConfig::interval, 100ms),
        duration_key("timeout", &HealthCheckConfig::timeout),
        integer_key("fall", &HealthCheckConfig::fall, 1, 100),
        integer_key("rise", &HealthCheckConfig::rise, 1, 100),
    };
    return keys;
}

const KeyTable<UpstreamTlsConfig>& upstream_tls_keys() {
    static const KeyTable<UpstreamTlsConfig> keys{
        file_key("ca_file", &UpstreamTlsConfig::ca_file),
        bool_key("verify", &UpstreamTlsConfig::verify),
        file_key("client_cert_file", &UpstreamTlsConfig::client_cert_file),
        file_key("client_key_file", &UpstreamTlsConfig::client_key_file),
    };
    return keys;
}

const KeyTable<ChallengeConfig>& challenge_keys() {
    static const KeyTable<ChallengeConfig> keys{
        enum_key("type", &ChallengeConfig::type,
                 EnumNames<ChallengeType>{{"none", ChallengeType::none},
                                          {"static", ChallengeType::static_password},
                                          {"dynamic", ChallengeType::dynamic}}),
        file_key("password_file", &ChallengeConfig::password_file),
        url_key("url", &ChallengeConfig::url),
        enum_key("auth", &ChallengeConfig::auth,
                 EnumNames<ChallengeAuth>{{"basic", ChallengeAuth::basic}, {"ntlm", ChallengeAuth::ntlm}}),
        string_key("username", &ChallengeConfig::username),
        file_key("client_cert_file", &ChallengeConfig::client_cert_file),
        file_key("client_key_file", &ChallengeConfig::client_key_file),
        file_key("ca_file", &ChallengeConfig::ca_file),
        bool_key("verify", &ChallengeConfig::verify),
        duration_key("lifetime", &ChallengeConfig::lifetime),
        duration_key("timeout", &ChallengeConfig::timeout),
        integer_key("expected_length", &ChallengeConfig::expected_length, 0, 255),  // 0: any length
        integer_key("max_concurrent_fetches", &ChallengeConfig::max_concurrent_fetches, 1, 64),
        duration_key("queue_timeout", &ChallengeConfig::queue_timeout),
    };
    return keys;
}

const KeyTable<ProfileConfig>& profile_keys() {
    static const KeyTable<ProfileConfig> keys{
        required(list_key("upstreams", &ProfileConfig::upstreams, upstream_keys)),
        optional_section_key("tls", &ProfileConfig::tls, upstream_tls_keys),
        optional_section_key("health_check", &ProfileConfig::health_check, health_check_keys),
        duration_key("connect_timeout", &ProfileConfig::connect_timeout),
        duration_key("timeout", &ProfileConfig::timeout),
        integer_key("max_idle_connections", &ProfileConfig::max_idle_connections, 0, 10'000),  // 0: no keep-alive
        integer_key("max_response_bytes", &ProfileConfig::max_response_bytes, 1024, 64 << 20),
        duration_key("ca_cache_ttl", &ProfileConfig::ca_cache_ttl, 0ms),  // 0: no cache
        duration_key("ca_refresh_interval", &ProfileConfig::ca_refresh_interval, 1000ms),
        bool_key("allow_mixed_ra", &ProfileConfig::allow_mixed_ra),
        duration_key("token_ttl", &ProfileConfig::token_ttl),
        bool_key("allow_get_cert", &ProfileConfig::allow_get_cert),
        bool_key("allow_get_crl", &ProfileConfig::allow_get_crl),
        bool_key("release_on_failure", &ProfileConfig::release_on_failure),
        bool_key("advertise_post_pki_operation", &ProfileConfig::advertise_post_pki_operation),
        section_key("challenge", &ProfileConfig::challenge, challenge_keys),
    };
    return keys;
}

// Profile names appear in URLs, logs and metric labels: keep them short and plain.
bool is_valid_profile_name(std::string_view name) {
    const auto plain = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    return !name.empty() && name.size() <= 63 && plain(name.front()) &&
           std::all_of(name.begin(), name.end(), [&](char c) { return plain(c) || c == '_' || c == '-'; });
}

void read_profiles(Reader& r, const Item& item, Config& config) {
    if (item.node.IsNull() || (item.node.IsMap() && item.node.size() == 0)) {
        r.error(item.position, item.path, "at least one profile is required");
        return;
    }
    if (!item.node.IsMap()) {
        r.error(item.position, item.path, "expected a mapping of profile names to profiles");
        return;
    }
    for_each_entry(r, item, [&](const Item& entry, const std::string& name) {
        if (!is_valid_profile_name(name))
            r.error(entry.key_position, entry.path,
                    "invalid profile name: use 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit");
        ProfileConfig& profile = config.profiles.emplace_back();
        profile.name = name;
        read_section(r, entry, profile_keys(), profile);
    });
}

// `profiles` maps each profile's name to its settings.
Key<Config> profiles_key() {
    Key<Config> key{"profiles", read_profiles};
    key.children = [] { return child_keys(".<name>.", profile_keys()); };
    return key;
}

const KeyTable<Config>& root_keys() {
    static const KeyTable<Config> keys{
        needs_restart(value_key("workers", &Config::workers, read_workers)),
        required(section_key("scep", &Config::scep, scep_keys)),
        enabling_section_key("admin", &Config::admin, admin_keys),
        enabling_section_key("metrics", &Config::metrics, metrics_keys),
        section_key("limits", &Config::limits, limits_keys),
        section_key("log", &Config::log, log_keys),
        needs_restart(section_key("store", &Config::store, store_keys)),
        required(profiles_key()),
    };
    return keys;
}

// ---- cross-field checks ----

bool covers_all_addresses(const ListenAddress& a) { return a.host == "0.0.0.0" || a.host == "::"; }
bool is_ipv6(const ListenAddress& a) { return a.host.find(':') != std::string::npos; }

// Whether two listeners would compete for the same socket. "::" also takes IPv4 on Linux by default.
bool listeners_overlap(const ListenAddress& a, const ListenAddress& b) {
    if (a.port == 0 || a.port != b.port) return false;
    if (a.host == b.host || a.host == "::" || b.host == "::") return true;
    return is_ipv6(a) == is_ipv6(b) && (covers_all_addresses(a) || covers_all_addresses(b));
}

void check_listeners(Reader& r, const Config& config) {
    std::vector<std::pair<std::string, const ListenAddress*>> listeners{{"scep.listen", &config.scep.listen}};
    if (config.admin.enabled) listeners.emplace_back("admin.listen", &config.admin.listen);
    if (config.metrics.enabled) listeners.emplace_back("metrics.listen", &config.metrics.listen);
    for (size_t i = 0; i < listeners.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (listeners_overlap(*listeners[i].second, *listeners[j].second))
                r.error(r.nearest_position(listeners[i].first), listeners[i].first,
                        "address " + listeners[i].second->text + " overlaps " + listeners[j].first + " (" +
                            listeners[j].second->text + ")");
}

void check_limits(Reader& r, const LimitsConfig& limits) {
    if (limits.max_header_bytes < limits.max_request_line_bytes)
        r.error(r.nearest_position("limits.max_header_bytes"), "limits.max_header_bytes",
                "must be at least max_request_line_bytes (" + std::to_string(limits.max_request_line_bytes) +
                    "): the request line counts towards the header bytes");
    // One largest request's input buffer (doubling as it grows) and a chunked body's decoding.
    const uint64_t largest_request = 4 * (uint64_t{limits.max_header_bytes} + limits.max_body_bytes);
    if (limits.max_buffered_bytes < largest_request)
        r.error(r.nearest_position("limits.max_buffered_bytes"), "limits.max_buffered_bytes",
                "must be at least 4 x (max_header_bytes + max_body_bytes) = " + std::to_string(largest_request) +
                    ": room for the buffers of one largest request");
}

void check_store(Reader& r, const StoreConfig& store) {
    const Position backend_position = r.nearest_position("store.backend");
    // A written backend was checked when read; the default one is checked here.
    if (!r.has("store.backend"))
        if (const auto why = unknown_backend(store.backend, r.options()))
            r.error(backend_position, "store.backend", *why);
    if (store.backend == "postgres" && !r.has("store.postgres.conninfo_file"))
        r.error(backend_position, "store.postgres.conninfo_file", "required when store.backend is postgres");
    if (store.backend == "webhook" && !r.has("store.webhook.url"))
        r.error(backend_position, "store.webhook.url", "required when store.backend is webhook");
}

// Keys that make a client certificate must come in pairs.
void check_client_certificate(Reader& r, const std::string& prefix) {
    const bool has_cert = r.has(prefix + ".client_cert_file");
    const bool has_key = r.has(prefix + ".client_key_file");
    if (has_cert && !has_key)
        r.error(r.nearest_position(prefix + ".client_cert_file"), prefix + ".client_key_file",
                "required with client_cert_file");
    if (has_key && !has_cert)
        r.error(r.nearest_position(prefix + ".client_key_file"), prefix + ".client_cert_file",
                "required with client_key_file");
}

// Which challenge keys mean something for a type; the others are reported to catch mix-ups.
bool challenge_key_applies(ChallengeType type, std::string_view key) {
    switch (type) {
        case ChallengeType::none: return key == "type";
        case ChallengeType::static_password: return key == "type" || key == "password_file";
        case ChallengeType::dynamic: return true;
    }
    return false;
}

std::string_view challenge_type_name(ChallengeType type) {
    switch (type) {
        case ChallengeType::none: return "none";
        case ChallengeType::static_password: return "static";
        case ChallengeType::dynamic: return "dynamic";
    }
    return "?";
}

void check_challenge(Reader& r, const std::string& profile_key, const ProfileConfig& profile) {
    const std::string prefix = profile_key + ".challenge";
    const ChallengeConfig& challenge = profile.challenge;
    const std::string type_name(challenge_type_name(challenge.type));
    for (const auto& key : challenge_keys()) {
        const std::string path = join_key(prefix, key.name);
        if (r.has(path) && !challenge_key_applies(challenge.type, key.name))
            r.error(r.nearest_position(path), path, "not used when challenge.type is " + type_name);
    }
    std::vector<std::string_view> needed;
    if (challenge.type == ChallengeType::static_password) needed = {"password_file"};
    if (challenge.type == ChallengeType::dynamic) needed = {"url", "username", "password_file"};
    for (const auto& name : needed) {
        const std::string path = join_key(prefix, name);
        if (!r.has(path))
            r.error(r.nearest_position(prefix + ".type"), path, "required when challenge.type is " + type_name);
    }
    if (challenge.type == ChallengeType::dynamic) {
        check_client_certificate(r, prefix);
        if (profile.token_ttl > challenge.lifetime)
            r.error(r.nearest_position(profile_key + ".token_ttl"), profile_key + ".token_ttl",
                    "longer than challenge.lifetime (" + format_duration(challenge.lifetime) +
                        "): the challenge would expire before the token");
    }
}

void check_profile(Reader& r, const ProfileConfig& profile) {
    const std::string key = "profiles." + profile.name;
    if (profile.connect_timeout > profile.timeout)
        r.error(r.nearest_position(key + ".connect_timeout"), key + ".connect_timeout",
                "longer than timeout (" + format_duration(profile.timeout) + "), which includes the connect");
    if (profile.upstreams.size() > ProfileConfig::kMaxUpstreams)
        r.error(r.nearest_position(key + ".upstreams"), key + ".upstreams",
                "at most " + std::to_string(ProfileConfig::kMaxUpstreams) + " upstreams per profile");
    for (size_t i = 0; i < profile.upstreams.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
            if (profile.upstreams[i].name != profile.upstreams[j].name) continue;
            const std::string path = key + ".upstreams[" + std::to_string(i) + "]";
            r.error(r.nearest_position(path + ".name"), path + ".name",
                    "upstream name '" + profile.upstreams[i].name + "' already used by upstreams[" + std::to_string(j) +
                        "] (give each upstream its own `name:`)");
            break;
        }
    }
    if (profile.health_check && profile.health_check->timeout > profile.health_check->interval)
        r.error(r.nearest_position(key + ".health_check.timeout"), key + ".health_check.timeout",
                "longer than health_check.interval (" + format_duration(profile.health_check->interval) + ")");
    if (profile.tls) {
        const bool any_https = std::any_of(profile.upstreams.begin(), profile.upstreams.end(),
                                           [](const UpstreamConfig& u) { return u.scheme == "https"; });
        if (!any_https && !profile.upstreams.empty())
            r.error(r.nearest_position(key + ".tls"), key + ".tls",
                    "applies to https upstreams and this profile has none");
        check_client_certificate(r, key + ".tls");
    }
    check_challenge(r, key, profile);
}

void check_config(Reader& r, const Config& config) {
    check_listeners(r, config);
    check_limits(r, config.limits);
    check_store(r, config.store);
    for (const auto& profile : config.profiles) check_profile(r, profile);
}

// The files of unselected store backends are not needed to run.
void drop_unused_store_files(LoadResult& result, const std::string& backend) {
    const std::string used = "store." + backend + ".";
    std::erase_if(result.referenced_files, [&](const FileReference& ref) {
        return ref.key.starts_with("store.") && !ref.key.starts_with(used);
    });
}

}  // namespace

std::string ConfigError::to_string() const {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    out += ": ";
    if (!key.empty()) out += key + ": ";
    return out + message;
}

std::optional<Position> LoadResult::position_of(std::string_view key) const {
    const auto it = key_positions.find(std::string(key));
    if (it == key_positions.end()) return std::nullopt;
    return it->second;
}

std::string LoadResult::error_text() const {
    std::string out;
    for (const auto& e : errors) out += e.to_string() + "\n";
    return out;
}

namespace {

// Where the second YAML document's first node is, if it has one (an empty trailing "---" is fine).
class SecondDocumentFinder final : public YAML::EventHandler {
public:
    std::optional<YAML::Mark> content;
    void OnDocumentStart(const YAML::Mark&) override { ++documents_; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { note(mark); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
        note(mark);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        note(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        note(mark);
    }
    void OnMapEnd() override {}

private:
    void note(const YAML::Mark& mark) {
        if (documents_ >= 2 && !content) content = mark;
    }
    int documents_ = 0;
};

std::optional<YAML::Mark> second_document_content(const std::string& text) {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    SecondDocumentFinder finder;
    for (int document = 0; document < 2 && parser.HandleNextDocument(finder); ++document) {
    }
    return finder.content;
}

}  // namespace

LoadResult load_config_text(const std::string& text, const std::string& source_name, const LoadOptions& options) {
    LoadResult result;
    result.source_name = source_name;
    Reader r(source_name, options, result);
    auto config = std::make_shared<Config>();
    config->source_path = source_name;
    try {
        // Not YAML::LoadAll: on some broken input (",a") yaml-cpp 0.7 reports a next document for
        // ever (yaml-cpp#1040). Load reads the first; a bounded look finds whether a second has content.
        if (const auto second = second_document_content(text))
            r.error(position_of_mark(*second), "", "only one YAML document is allowed");
        const YAML::Node root = YAML::Load(text);
        // An empty document has no useful position: its errors name only the file.
        const Position root_position = root.IsNull() ? Position{} : position_of_mark(root.Mark());
        read_section(r, Item{"", root, root_position, root_position}, root_keys(), *config);
    } catch (const YAML::DeepRecursion& e) {
        r.error(position_of_mark(e.mark), "", "YAML syntax error: nested too deeply");
        return result;
    } catch (const YAML::Exception& e) {
        r.error(position_of_mark(e.mark), "", "YAML syntax error: " + e.msg);
        return result;
    }
    check_config(r, *config);
    drop_unused_store_files(result, config->store.backend);
    std::stable_sort(result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
        return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    if (r.gave_up())
        result.errors.push_back({source_name, 0, 0, "",
                                 "too many errors: stopped after the first " + std::to_string(kMaxErrors)});
    if (result.errors.empty()) result.config = std::move(config);
    return result;
}

LoadResult load_config_file(const std::string& path, const LoadOptions& options) {
    const auto fail = [&](std::string message) {
        LoadResult result;
        result.source_name = path;
        result.errors.push_back({path, 0, 0, "", std::move(message)});
        return result;
    };
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return fail("cannot read config file: it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(std::string("cannot read config file: ") + std::strerror(errno));
    std::string text(kMaxConfigFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) return fail("cannot read config file");
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigFileBytes) return fail("config file is larger than 4 MiB");
    return load_config_text(text, path, options);
}

std::vector<ConfigError> check_referenced_files(const LoadResult& result) {
    std::vector<ConfigError> errors;
    for (const auto& ref : result.referenced_files) {
        const Position at = result.position_of(ref.key).value_or(Position{});
        const auto fail = [&](std::string message) {
            errors.push_back({result.source_name, at.line, at.column, ref.key, std::move(message)});
        };
        std::error_code ec;
        const auto status = std::filesystem::status(ref.path, ec);
        if (ec || !std::filesystem::exists(status)) {
            fail("cannot read '" + ref.path + "': " + (ec ? ec.message() : "no such file"));
        } else if (!std::filesystem::is_regular_file(status)) {
            fail("'" + ref.path + "' is not a regular file");
        } else if (std::ifstream file(ref.path, std::ios::binary); !file) {
            fail("cannot open '" + ref.path + "' for reading: " + std::strerror(errno));
        }
    }
    return errors;
}

std::vector<KeyInfo> config_keys() { return child_keys("", root_keys()); }

}  // namespace scepproxy::conf
