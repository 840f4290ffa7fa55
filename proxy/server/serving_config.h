// ServingConfig: one immutable generation of what the proxy serves with — config, upstreams, TLS, secrets, metric handles.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/server/config_file.h"
#include "proxy/admin/admin_serving.h"
#include "proxy/challenge/challenge_source.h"
#include "proxy/scep/profile_certificates.h"
#include "proxy/telemetry/metrics.h"
#include "proxy/net/tls_context.h"
#include "proxy/upstream/upstream_target.h"

namespace scepproxy::proxy {

// Built on the main thread (at start-up and on SIGHUP), then shared read-only by every loop.
// A reload builds a new one; loops switch to it between requests, and the old one lives on
// (shared_ptr) until the last request that started with it is done.
// Its config, admin credentials and challenge sources are the AdminServing part: what the
// admin API is given of it.
struct ServingConfig : AdminServing {
    std::vector<ProfileTargets> profiles;         // upstreams resolved, one per config profile
    std::vector<ProfileMetrics> profile_metrics;  // [i] belongs to profiles[i]
    // [i]: profiles[i]'s upstream certificate groups, published by the control loop's watcher.
    std::vector<std::unique_ptr<ProfileCertificates>> profile_certificates;
    SslCtxPtr scep_tls;   // null: plain HTTP
    SslCtxPtr admin_tls;  // null: plain HTTP or no admin listener

    const ProfileTargets* find_profile(std::string_view name) const;
};

// Reads everything the config refers to (TLS certificates and keys, CA files, secrets),
// resolves upstream addresses and resolves the metric handles. On failure returns null and
// appends the reasons to *errors as "FILE:LINE:COL: key: message" (the position of the key
// that names what failed), like `scepproxy check` does.
std::shared_ptr<const ServingConfig> make_serving_config(const ConfigFile& file, ProxyMetrics& metrics,
                                                         challenge::FetchObserver observer,
                                                         std::vector<std::string>* errors);

}  // namespace scepproxy::proxy
