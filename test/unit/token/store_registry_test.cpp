// Tests for the store registry: the explicit backend list and dispatch by name.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "test/unit/token/temp_directory.h"
#include "token/store_registry.h"

namespace scepproxy::token {

TEST_CASE("store registry: sqlite is compiled in and opens from the config", "[registry]") {
    const auto backends = compiled_store_backends();
    CHECK(std::find(backends.begin(), backends.end(), "sqlite") != backends.end());

    test::TempDirectory directory;
    conf::StoreConfig config;
    config.backend = "sqlite";
    config.sqlite.path = directory.file("enrollments.db");
    auto opened = open_enrollment_store(config);
    INFO(opened.message);
    REQUIRE(opened.ok());
    REQUIRE(opened.value);
    CHECK(std::string(opened.value->backend_name()) == "sqlite");
}

TEST_CASE("store registry: an unknown backend is invalid and lists what is compiled in", "[registry]") {
    std::string have;
    for (const std::string& name : compiled_store_backends()) have += (have.empty() ? "" : ", ") + name;

    for (const std::string name : {"mysql", "", "SQLite", "sqlite "}) {
        conf::StoreConfig config;
        config.backend = name;
        const auto opened = open_enrollment_store(config);
        CHECK(opened.status == StoreStatus::invalid);
        CHECK_FALSE(opened.value);
        CHECK(opened.message == "unknown backend '" + name + "' (have: " + have + ")");
    }
}

TEST_CASE("store registry: a backend that fails to open passes its reason on", "[registry]") {
    test::TempDirectory directory;
    conf::StoreConfig config;
    config.backend = "sqlite";
    config.sqlite.path = directory.file("missing-dir/enrollments.db");
    const auto opened = open_enrollment_store(config);
    CHECK(opened.status == StoreStatus::unavailable);
    CHECK_FALSE(opened.value);
    CHECK_THAT(opened.message, Catch::Contains("does not exist"));
}

}  // namespace scepproxy::token
