// Upstream probe: `scepproxy check --probe`'s GetCACaps and GetCACert to every upstream of every profile, and its report.
//
// Like NDES's "Test Connection": each upstream is asked both, on fresh connections, all at once
// on one event loop in the calling thread; each upstream's certificates are read with pkcs7/ and
// a profile's upstreams grouped by them as the serving proxy groups them.
#pragma once

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "pkcs7/ca_certificates.h"
#include "proxy/upstream/upstream_fetch.h"

namespace scepproxy::proxy {

// What one upstream answered.
struct UpstreamProbeResult {
    std::string label;  // the upstream's name in logs and metrics
    std::string url;
    UpstreamFetchResult caps;                           // GetCACaps
    UpstreamFetchResult ca_certificates;                // GetCACert
    std::optional<pkcs7::CaCertificates> certificates;  // GetCACert answered 200 and was read
    std::string certificates_error;                     // it answered 200 but couldn't be read: why
    std::optional<std::size_t> group;                   // 0-based within the profile; nullopt: no certificates
    // Both answered 200 and the certificates were read.
    bool ok() const { return caps.answered() && caps.status == 200 && certificates.has_value(); }
};

// One profile's upstreams, in configuration order.
struct ProfileProbeResult {
    const conf::ProfileConfig* profile = nullptr;
    std::string error;  // the upstreams could not be resolved (or the TLS context made): nothing was asked
    std::vector<UpstreamProbeResult> upstreams;
    std::size_t group_count = 0;  // certificate groups among the upstreams that answered
    bool mixed() const { return group_count > 1; }
    // Every upstream ok, and one certificate group unless the profile sets allow_mixed_ra.
    bool ok() const;
};

// Asks every upstream of every profile at once; returns when each fetch finished (within its
// profile's `timeout`) or the overall deadline (the longest `timeout`, plus a second) passed.
// Ignores SIGPIPE for the process, as `serve` does. Results are in configuration order.
std::vector<ProfileProbeResult> probe_upstreams(const conf::Config& config);

// Writes the report of one profile's probe, lines "profile P: upstream U: ..." and one
// "profile P: upstreams..." summary (the disagreement of a mixed profile named there). Returns ok().
bool print_upstream_probe(std::FILE* out, const ProfileProbeResult& result);

}  // namespace scepproxy::proxy
