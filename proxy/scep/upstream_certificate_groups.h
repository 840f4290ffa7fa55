// UpstreamCertificateGroups: a profile's upstreams grouped by identical CA/RA certificates, and which group can decrypt a request.
//
// Each NDES enrolls its own RA certificates, so upstreams behind one profile may not be able to
// decrypt each other's requests. Upstreams whose GetCACert answers hold the same certificates
// (the same set of SHA-256 fingerprints, in any order) form one group; a request goes only to
// the group whose encryption certificate its envelope names. Pure data: built off the data path
// whenever an upstream's answer changes, read by the request path.
#pragma once

#include <cstddef>
#include <cstdint>
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
    std::size_t upstream_count() const { return group_of_upstream_.size(); }
    // Bit i: upstream i. Upstreams whose certificates are known (in some group).
    uint32_t known_upstreams() const { return known_upstreams_; }
    bool all_known() const { return known_upstreams_ == every_upstream(); }
    uint32_t every_upstream() const {
        return upstream_count() >= 32 ? ~uint32_t{0} : (uint32_t{1} << upstream_count()) - 1;
    }
    // Whether requests must be routed by recipient: the upstreams whose certificates are known
    // don't all hold the same ones, or some hold unknown ones. One group of all upstreams, or
    // nothing known yet: any upstream serves any request (as with a single upstream).
    bool routes() const { return known_upstreams_ != 0 && !(all_known() && groups_.size() == 1); }
    // The group's upstreams as a mask (bit i: upstream i).
    uint32_t upstreams_of_group(std::size_t group) const { return groups_[group].upstream_mask; }
    // A stable identity of the group's certificates (never 0): the same certificates, the same key,
    // whatever the group's index. Keys cached answers.
    uint64_t group_key(std::size_t group) const { return groups_[group].key; }
    // The group's SHA-256 fingerprints, sorted.
    const std::vector<std::string>& fingerprints_of(std::size_t group) const { return groups_[group].fingerprints; }
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
    // The upstreams of those groups, as a mask (0: none holds it). No allocation: the request path.
    uint32_t upstreams_for(const pkcs7::RecipientId& recipient) const { return holders_of(recipient).upstreams; }
    struct Holders {
        uint32_t upstreams = 0;
        // Different certificates (fingerprints) carry the recipient's name: only one of them
        // can decrypt the request, and the name doesn't say which.
        bool ambiguous = false;
    };
    Holders holders_of(const pkcs7::RecipientId& recipient) const;
    // Whether certificates devices encrypt to share a name (issuer and serial) across groups.
    bool names_ambiguous() const { return names_ambiguous_; }
    std::optional<std::size_t> group_with_key(uint64_t key) const;

private:
    struct Group {
        std::vector<std::string> fingerprints;  // sorted: the group's identity
        std::vector<pkcs7::CertificateSummary> certificates;
        std::vector<std::size_t> recipients;  // indices into certificates: copies stay valid
        std::vector<std::size_t> upstreams;
        uint32_t upstream_mask = 0;
        uint64_t key = 0;
    };

    // The recipient certificate of the group it names, or null.
    const pkcs7::CertificateSummary* recipient_in(const Group& group, const pkcs7::RecipientId& recipient) const;

    std::vector<Group> groups_;
    uint32_t known_upstreams_ = 0;
    bool names_ambiguous_ = false;
    std::vector<std::optional<std::size_t>> group_of_upstream_;
};

}  // namespace scepproxy::proxy
