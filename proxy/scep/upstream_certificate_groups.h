// UpstreamCertificateGroups: a profile's upstreams grouped by identical CA/RA certificates, and which group can decrypt a request.
//
// Each NDES enrolls its own RA certificates, so upstreams behind one profile may not be able to
// decrypt each other's requests. Upstreams whose GetCACert answers hold the same certificates
// (the same set of SHA-256 fingerprints, in any order) form one group; a request goes only to
// the group whose encryption certificate its envelope names. Pure data: built off the data path
// whenever an upstream's answer changes, read by the request path.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "pkcs7/ca_certificates.h"
#include "pkcs7/envelope_recipients.h"

namespace scepproxy::proxy {

class UpstreamCertificateGroups {
public:
    // One entry per upstream of the profile, in configuration order: its certificates, or
    // nullopt while they are unknown (not fetched yet, or the fetch failed).
    static UpstreamCertificateGroups build(const std::vector<std::optional<pkcs7::CaCertificates>>& per_upstream);

    std::size_t group_count() const { return groups_.size(); }
    // nullopt: the upstream's certificates are unknown.
    std::optional<std::size_t> group_of_upstream(std::size_t upstream) const;
    const std::vector<std::size_t>& upstreams_of(std::size_t group) const { return groups_[group].upstreams; }
    const std::vector<pkcs7::CertificateSummary>& certificates_of(std::size_t group) const {
        return groups_[group].certificates;
    }
    // The groups holding the certificate the recipient names, among those a device encrypts to
    // (RA encryption, or one RA for both uses; the CA only in an answer without RA certificates).
    // Several when groups share that certificate (e.g. only their RA signing certificates differ).
    std::vector<std::size_t> groups_for(const pkcs7::RecipientId& recipient) const;

private:
    struct Group {
        std::vector<std::string> fingerprints;  // sorted: the group's identity
        std::vector<pkcs7::CertificateSummary> certificates;
        std::vector<std::size_t> recipients;  // indices into certificates: copies stay valid
        std::vector<std::size_t> upstreams;
    };

    std::vector<Group> groups_;
    std::vector<std::optional<std::size_t>> group_of_upstream_;
};

}  // namespace scepproxy::proxy
