// Tests for SCEP routing: token segment, path suffix, operation and message parameters.
#include <catch2/catch.hpp>

#include "proxy/scep/scep_route.h"

using namespace scepproxy::proxy;

TEST_CASE("routes /scep/{token} with the operation", "[scep_route]") {
    const auto r = route_scep_request("/scep/abc", "operation=GetCACert");
    REQUIRE(r.status == RouteStatus::ok);
    CHECK(r.route.token_text == "abc");
    CHECK(r.route.operation == ScepOperation::get_ca_cert);
    CHECK_FALSE(r.route.has_message);
}

TEST_CASE("ignores the path suffix clients append", "[scep_route]") {
    const auto r = route_scep_request("/scep/abc/pkiclient.exe", "operation=GetCACaps&message=default");
    REQUIRE(r.status == RouteStatus::ok);
    CHECK(r.route.token_text == "abc");
    CHECK(r.route.operation == ScepOperation::get_ca_caps);
    CHECK(r.route.has_message);
    CHECK(r.route.message == "default");
}

TEST_CASE("keeps the message parameter raw, '+' included", "[scep_route]") {
    const auto r = route_scep_request("/scep/t", "operation=PKIOperation&message=MIIB+ab/cd%2B==");
    REQUIRE(r.status == RouteStatus::ok);
    CHECK(r.route.operation == ScepOperation::pki_operation);
    CHECK(r.route.message == "MIIB+ab/cd%2B==");
}

TEST_CASE("names unknown operations 'other' and keeps their text", "[scep_route]") {
    const auto r = route_scep_request("/scep/t", "operation=GetNextCACert");
    REQUIRE(r.status == RouteStatus::ok);
    CHECK(r.route.operation == ScepOperation::get_next_ca_cert);
    const auto o = route_scep_request("/scep/t", "operation=Frobnicate");
    REQUIRE(o.status == RouteStatus::ok);
    CHECK(o.route.operation == ScepOperation::other);
    CHECK(o.route.operation_text == "Frobnicate");
}

TEST_CASE("rejects paths that are not /scep/{token}", "[scep_route]") {
    for (const char* path : {"/", "/scep", "/scep/", "/scepx/abc", "/other/abc", "/scep//x"}) {
        INFO(path);
        CHECK(route_scep_request(path, "operation=GetCACert").status == RouteStatus::not_scep_path);
    }
}

TEST_CASE("rejects missing, empty, duplicated or odd operations", "[scep_route]") {
    CHECK(route_scep_request("/scep/t", "").status == RouteStatus::missing_operation);
    CHECK(route_scep_request("/scep/t", "message=x").status == RouteStatus::missing_operation);
    CHECK(route_scep_request("/scep/t", "operation=").status == RouteStatus::bad_operation);
    CHECK(route_scep_request("/scep/t", "operation=GetCACert&operation=PKIOperation").status ==
          RouteStatus::bad_operation);
    CHECK(route_scep_request("/scep/t", "operation=Get%20CACert").status == RouteStatus::bad_operation);
    CHECK(route_scep_request("/scep/t", std::string(65, 'A').insert(0, "operation=")).status ==
          RouteStatus::bad_operation);
}

TEST_CASE("rejects duplicated messages, empty keys and unsafe message bytes", "[scep_route]") {
    CHECK(route_scep_request("/scep/t", "operation=PKIOperation&message=a&message=b").status == RouteStatus::bad_query);
    CHECK(route_scep_request("/scep/t", "operation=PKIOperation&=x").status == RouteStatus::bad_query);
    CHECK(route_scep_request("/scep/t", "operation=PKIOperation&message=a\"b").status == RouteStatus::bad_query);
    CHECK(route_scep_request("/scep/t", std::string("operation=PKIOperation&message=a\x01", 33)).status ==
          RouteStatus::bad_query);
}

TEST_CASE("ignores unrelated parameters and empty pairs", "[scep_route]") {
    const auto r = route_scep_request("/scep/t", "x=1&&operation=GetCACert&y");
    REQUIRE(r.status == RouteStatus::ok);
    CHECK(r.route.operation == ScepOperation::get_ca_cert);
}
