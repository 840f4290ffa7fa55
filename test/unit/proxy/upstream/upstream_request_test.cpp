// Tests for the request the proxy sends upstream: rebuilt headers, Content-Length framing.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/scep/scep_route.h"
#include "proxy/upstream/upstream_request.h"

using namespace scepproxy;
using namespace scepproxy::proxy;

namespace {

conf::UpstreamConfig ndes() {
    conf::UpstreamConfig upstream;
    upstream.url = "http://ndes.corp.example:8080/certsrv/mscep/mscep.dll";
    upstream.scheme = "http";
    upstream.host = "ndes.corp.example";
    upstream.port = 8080;
    upstream.path = "/certsrv/mscep/mscep.dll";
    upstream.host_header = "ndes.corp.example:8080";
    return upstream;
}

std::string build(const ScepRoute& route, const std::string_view* body) {
    ByteBuffer out;
    build_upstream_request(out, ndes(), route.operation_text, route.has_message ? route.message : "", body);
    return std::string(out.view());
}

}  // namespace

TEST_CASE("GET requests carry the operation and message, and only our headers", "[upstream_request]") {
    const auto routed = route_scep_request("/scep/t/pkiclient.exe", "operation=GetCACert&message=CA%201&junk=1");
    REQUIRE(routed.status == RouteStatus::ok);
    CHECK(build(routed.route, nullptr) ==
          "GET /certsrv/mscep/mscep.dll?operation=GetCACert&message=CA%201 HTTP/1.1\r\n"
          "Host: ndes.corp.example:8080\r\nUser-Agent: scepproxy\r\n\r\n");
}

TEST_CASE("POST bodies are framed with Content-Length, never chunked", "[upstream_request]") {
    const auto routed = route_scep_request("/scep/t", "operation=PKIOperation");
    REQUIRE(routed.status == RouteStatus::ok);
    const std::string body_bytes("\x30\x82\x01\x00\x00binary", 11);
    const std::string_view body(body_bytes);
    const std::string request = build(routed.route, &body);
    CHECK(request.rfind("POST /certsrv/mscep/mscep.dll?operation=PKIOperation HTTP/1.1\r\n", 0) == 0);
    CHECK(request.find("Content-Length: 11\r\n") != std::string::npos);
    CHECK(request.find("Content-Type: application/x-pki-message\r\n") != std::string::npos);
    CHECK(request.find("chunked") == std::string::npos);
    CHECK(request.substr(request.size() - body_bytes.size()) == body_bytes);
}
