// A tenant of its own on the shared fake MDM (test/fakes/fake_mdm_webhook.py, started by ctest) for one test.
#pragma once

#include <catch2/catch.hpp>
#include <curl/curl.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/unit/token/test_servers.h"
#include "token/enrollment_token.h"

namespace scepproxy::token::test {

class FakeMdmWebhook {
public:
    static constexpr const char* kBearerToken = "fake-mdm-bearer-5b2e";

    // Tests run in parallel against one fake: each has a tenant (its own configuration and
    // records), named in the URL the store is given.
    FakeMdmWebhook() : base_url_(test_servers_file("fake-mdm/url")) {
        auto token = EnrollmentToken::generate();
        REQUIRE(token);
        tenant_ = token->hash().hex().substr(0, 16);
        configure(nlohmann::json::object());
    }

    // Where this test's compliance checks go.
    std::string url() const { return base_url_ + "/t/" + tenant_ + "/check"; }

    // From now on connections are closed without an answer: the MDM is gone.
    void stop() { configure({{"drop", true}}); }

    // Replaces this tenant's configuration (see fake_mdm_webhook.py); the bearer token stays.
    void configure(nlohmann::json config) {
        config["bearer_token"] = kBearerToken;
        const auto [status, body] = http("POST", "/_control/config?tenant=" + tenant_, config.dump());
        REQUIRE(status == 204);
    }

    std::vector<nlohmann::json> requests() {
        const auto [status, body] = http("GET", "/_control/requests?tenant=" + tenant_, "");
        REQUIRE(status == 200);
        return nlohmann::json::parse(body).get<std::vector<nlohmann::json>>();
    }

private:
    static size_t append(char* data, size_t size, size_t count, void* out) {
        static_cast<std::string*>(out)->append(data, size * count);
        return size * count;
    }

    std::pair<long, std::string> http(const char* method, const std::string& path, const std::string& body) {
        CURL* curl = curl_easy_init();
        REQUIRE(curl);
        std::string answer;
        curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
        const std::string url = base_url_ + path;
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        if (std::string(method) == "POST") curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &append);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        const CURLcode code = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        INFO(curl_easy_strerror(code));
        REQUIRE(code == CURLE_OK);
        return {status, answer};
    }

    std::string base_url_;
    std::string tenant_;
};

}  // namespace scepproxy::token::test
