// AdminServing: what the admin API serves with from one config generation — the config, its bearer credentials, the challenge sources.
#pragma once

#include <memory>
#include <optional>

#include "conf/config.h"
#include "proxy/admin/admin_api_request.h"
#include "proxy/challenge/challenge_source.h"

namespace scepproxy::proxy {

// The admin API's narrow view of a ServingConfig (which extends it): admin/ needs nothing
// else of the server's, so it doesn't depend on server/. Immutable once built; shared
// read-only by the control loop and the pool's threads.
struct AdminServing {
    std::shared_ptr<const conf::Config> config;
    std::optional<BearerCredentials> admin_credentials;  // set when the admin listener is on
    std::shared_ptr<const challenge::ChallengeSources> challenges;
};

}  // namespace scepproxy::proxy
