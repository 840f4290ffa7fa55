// SCEP routing: /scep/{token}[/suffix]?operation=OP[&message=M], per RFC 8894 the suffix is ignored.
#include "proxy/scep/scep_route.h"

#include <array>

#include "proxy/http/http_field_syntax.h"

namespace scepproxy::proxy {
namespace {

constexpr std::string_view kScepPrefix = "/scep/";

ScepOperation operation_from_name(std::string_view name) {
    if (name == "GetCACert") return ScepOperation::get_ca_cert;
    if (name == "GetCACaps") return ScepOperation::get_ca_caps;
    if (name == "PKIOperation") return ScepOperation::pki_operation;
    if (name == "GetNextCACert") return ScepOperation::get_next_ca_cert;
    return ScepOperation::other;
}

// Operation names are plain ASCII words; anything else can't be a SCEP operation.
bool is_operation_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
    return true;
}

// The message is forwarded upstream as written, so it must stay one clean query value.
// A table: a GET message is thousands of characters.
constexpr http::ByteSet make_query_value_chars() {
    http::ByteSet set{};
    for (int c = '!'; c < 0x7f; ++c) set[c] = true;
    for (unsigned char c : {'#', '"', '<', '>', '\\'}) set[c] = false;
    return set;
}
constexpr http::ByteSet kQueryValueChars = make_query_value_chars();

bool is_query_value(std::string_view value) { return http::all_bytes_in(value, kQueryValueChars); }

}  // namespace

const char* to_string(ScepOperation op) {
    switch (op) {
        case ScepOperation::get_ca_cert: return "GetCACert";
        case ScepOperation::get_ca_caps: return "GetCACaps";
        case ScepOperation::pki_operation: return "PKIOperation";
        case ScepOperation::get_next_ca_cert: return "GetNextCACert";
        case ScepOperation::other: return "other";
    }
    return "other";
}

const char* to_string(RouteStatus status) {
    switch (status) {
        case RouteStatus::ok: return "ok";
        case RouteStatus::not_scep_path: return "not_found";
        case RouteStatus::missing_operation: return "missing_operation";
        case RouteStatus::bad_operation: return "bad_operation";
        case RouteStatus::bad_query: return "bad_query";
    }
    return "bad_query";
}

RouteResult route_scep_request(std::string_view path, std::string_view query) {
    RouteResult result;
    if (path.size() <= kScepPrefix.size() || path.substr(0, kScepPrefix.size()) != kScepPrefix) {
        result.status = RouteStatus::not_scep_path;
        return result;
    }
    std::string_view rest = path.substr(kScepPrefix.size());
    const size_t slash = rest.find('/');
    result.route.token_text = rest.substr(0, slash);
    if (result.route.token_text.empty()) {
        result.status = RouteStatus::not_scep_path;
        return result;
    }

    bool have_operation = false;
    while (!query.empty()) {
        const size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;  // "a=1&&b=2" is harmless
        const size_t eq = pair.find('=');
        const std::string_view key = pair.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (key.empty()) {
            result.status = RouteStatus::bad_query;
            return result;
        }
        if (key == "operation") {
            if (have_operation || !is_operation_name(value)) {
                result.status = RouteStatus::bad_operation;
                return result;
            }
            have_operation = true;
            result.route.operation_text = value;
            result.route.operation = operation_from_name(value);
        } else if (key == "message") {
            if (result.route.has_message || !is_query_value(value)) {
                result.status = RouteStatus::bad_query;
                return result;
            }
            result.route.has_message = true;
            result.route.message = value;
        }
        // Other parameters are not SCEP's: ignored and not forwarded.
    }
    if (!have_operation) result.status = RouteStatus::missing_operation;
    return result;
}

}  // namespace scepproxy::proxy
