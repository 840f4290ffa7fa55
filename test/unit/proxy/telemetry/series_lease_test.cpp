// Tests for the upstream_up series leases: a reload that removes an upstream removes its series once no configuration has it.
#include <catch2/catch.hpp>

#include <optional>

#include "proxy/telemetry/metrics.h"

namespace scepproxy::proxy {
namespace {

conf::ProfileConfig profile_with(std::initializer_list<const char*> upstreams) {
    conf::ProfileConfig profile;
    profile.name = "corp";
    for (const char* name : upstreams) {
        conf::UpstreamConfig upstream;
        upstream.name = name;
        profile.upstreams.push_back(upstream);
    }
    return profile;
}

bool scraped(const ProxyMetrics& metrics, const std::string& upstream) {
    return metrics.render().find("scepproxy_upstream_up{profile=\"corp\",upstream=\"" + upstream + "\"}") !=
           std::string::npos;
}

TEST_CASE("an upstream's series goes when the last configuration with it goes", "[proxy][metrics]") {
    conf::Config config;
    ProxyMetrics metrics(config);
    std::optional<ProfileMetrics> before = metrics.resolve_profile(profile_with({"ndes1", "ndes2"}));
    before->upstream_up[1]->Set(1);
    CHECK(scraped(metrics, "ndes1"));
    CHECK(scraped(metrics, "ndes2"));

    // A reload without ndes2, while requests of the old configuration still run: both stay.
    std::optional<ProfileMetrics> after = metrics.resolve_profile(profile_with({"ndes1"}));
    CHECK(after->upstream_up[0] == before->upstream_up[0]);  // the same series, shared
    CHECK(scraped(metrics, "ndes2"));

    // The old configuration is done: ndes2's series leaves the scrape, ndes1's stays.
    before.reset();
    CHECK_FALSE(scraped(metrics, "ndes2"));
    CHECK(scraped(metrics, "ndes1"));
    after->upstream_up[0]->Set(0);  // still a live series

    // An upstream added back gets a series again.
    std::optional<ProfileMetrics> again = metrics.resolve_profile(profile_with({"ndes1", "ndes2"}));
    CHECK(scraped(metrics, "ndes2"));
    after.reset();
    again.reset();
    CHECK_FALSE(scraped(metrics, "ndes1"));
}

}  // namespace
}  // namespace scepproxy::proxy
