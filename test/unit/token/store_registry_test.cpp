// Tests for the store registry: the explicit backend list and dispatch by name.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "test/unit/token/temp_directory.h"
#include "token/store_registry.h"

namespace scepproxy::token {

TEST_CASE("store registry: sqlite is compiled in and opens from the config", "[registry]") {
    CHECK(compiled_store_backends() == std::vector<std::string>{"sqlite", "postgres", "webhook"});

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

TEST_CASE("store registry: postgres and webhook settings are checked before connecting", "[registry]") {
    test::TempDirectory directory;
    conf::StoreConfig config;

    SECTION("postgres without a readable conninfo file") {
        config.backend = "postgres";
        config.postgres.conninfo_file = directory.file("missing.conninfo");
        const auto opened = open_enrollment_store(config);
        CHECK(opened.status == StoreStatus::invalid);
        CHECK_THAT(opened.message, Catch::Contains("missing.conninfo"));
    }
    SECTION("postgres with an empty conninfo file") {
        config.backend = "postgres";
        config.postgres.conninfo_file = directory.file("empty.conninfo");
        std::ofstream(config.postgres.conninfo_file) << "  \n";
        const auto opened = open_enrollment_store(config);
        CHECK(opened.status == StoreStatus::invalid);
        CHECK_THAT(opened.message, Catch::Contains("empty"));
    }
    SECTION("postgres with a connection string libpq can't parse: the secret is not repeated") {
        config.backend = "postgres";
        config.postgres.conninfo_file = directory.file("bad.conninfo");
        std::ofstream(config.postgres.conninfo_file) << "host=db password=hunter2-secret nonsense\n";
        const auto opened = open_enrollment_store(config);
        CHECK(opened.status == StoreStatus::invalid);
        CHECK_THAT(opened.message, !Catch::Contains("hunter2"));
        CHECK_THAT(opened.message, Catch::Contains("connection string"));
    }
    SECTION("postgres that can't be reached: unavailable, the secret not repeated") {
        config.backend = "postgres";
        config.postgres.conninfo_file = directory.file("unreachable.conninfo");
        config.postgres.connect_timeout = std::chrono::seconds(5);
        // A socket directory with no server in it: refused at once.
        std::ofstream(config.postgres.conninfo_file)
            << "host=" << directory.path().string() << " dbname=x user=x password=hunter2-secret\n";
        const auto opened = open_enrollment_store(config);
        CHECK(opened.status == StoreStatus::unavailable);
        CHECK_THAT(opened.message, !Catch::Contains("hunter2"));
        CHECK_FALSE(opened.message.empty());
    }
    SECTION("webhook with a url that isn't http(s)") {
        config.backend = "webhook";
        config.sqlite.path = directory.file("enrollments.db");
        config.webhook.url = "ftp://mdm.example.com/";
        const auto opened = open_enrollment_store(config);
        CHECK(opened.status == StoreStatus::invalid);
        CHECK_THAT(opened.message, Catch::Contains("http"));
    }
    SECTION("webhook with a missing bearer token file") {
        config.backend = "webhook";
        config.sqlite.path = directory.file("enrollments.db");
        config.webhook.url = "http://127.0.0.1:9/check";
        config.webhook.bearer_token_file = directory.file("no.token");
        const auto opened = open_enrollment_store(config);
        CHECK(opened.status == StoreStatus::invalid);
        CHECK_THAT(opened.message, Catch::Contains("no.token"));
    }
    SECTION("webhook opens its local database (the webhook is only asked on a device check)") {
        config.backend = "webhook";
        config.sqlite.path = directory.file("enrollments.db");
        config.webhook.url = "http://127.0.0.1:9/check";
        auto opened = open_enrollment_store(config);
        INFO(opened.message);
        REQUIRE(opened.ok());
        CHECK(std::string(opened.value->backend_name()) == "webhook");
    }
}

}  // namespace scepproxy::token
