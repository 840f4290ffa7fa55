// Groups a profile's upstreams by their GetCACert certificates and finds the group a request's recipient names.
#include "proxy/scep/upstream_certificate_groups.h"

#include <algorithm>
#include <functional>

namespace scepproxy::proxy {

namespace {

std::vector<std::string> sorted_fingerprints(const pkcs7::CaCertificates& answer) {
    std::vector<std::string> fingerprints;
    fingerprints.reserve(answer.certificates.size());
    for (const pkcs7::CertificateSummary& certificate : answer.certificates)
        fingerprints.push_back(certificate.sha256_fingerprint);
    std::sort(fingerprints.begin(), fingerprints.end());
    fingerprints.erase(std::unique(fingerprints.begin(), fingerprints.end()), fingerprints.end());
    return fingerprints;
}

bool is_encryption_role(pkcs7::CertificateRole role) {
    return role == pkcs7::CertificateRole::ra_encryption || role == pkcs7::CertificateRole::ra;
}

}  // namespace

UpstreamCertificateGroups UpstreamCertificateGroups::build(
    const std::vector<std::optional<pkcs7::CaCertificates>>& per_upstream) {
    UpstreamCertificateGroups result;
    result.group_of_upstream_.resize(per_upstream.size());
    for (std::size_t upstream = 0; upstream < per_upstream.size(); ++upstream) {
        if (!per_upstream[upstream]) continue;
        std::vector<std::string> fingerprints = sorted_fingerprints(*per_upstream[upstream]);
        auto same = std::find_if(result.groups_.begin(), result.groups_.end(),
                                 [&](const Group& group) { return group.fingerprints == fingerprints; });
        if (same == result.groups_.end()) {
            Group group;
            group.fingerprints = std::move(fingerprints);
            group.certificates = per_upstream[upstream]->certificates;
            result.groups_.push_back(std::move(group));
            same = result.groups_.end() - 1;
        }
        same->upstreams.push_back(upstream);
        if (upstream < 32) {
            same->upstream_mask |= uint32_t{1} << upstream;
            result.known_upstreams_ |= uint32_t{1} << upstream;
        }
        result.group_of_upstream_[upstream] = static_cast<std::size_t>(same - result.groups_.begin());
    }
    for (Group& group : result.groups_) {
        std::string joined;
        for (const std::string& fingerprint : group.fingerprints) joined += fingerprint + ",";
        group.key = std::hash<std::string>{}(joined) | 1;  // never 0: 0 means "no group"
        for (std::size_t i = 0; i < group.certificates.size(); ++i)
            if (is_encryption_role(group.certificates[i].role)) group.recipients.push_back(i);
        if (group.recipients.empty()) {  // no RA (scepserver, a CA answering itself): devices encrypt to the CA
            for (std::size_t i = 0; i < group.certificates.size(); ++i)
                if (group.certificates[i].role == pkcs7::CertificateRole::ca) group.recipients.push_back(i);
        }
    }
    // Two groups' recipient certificates with the same issuer and serial but different keys.
    for (std::size_t a = 0; a < result.groups_.size(); ++a)
        for (std::size_t b = a + 1; b < result.groups_.size(); ++b)
            for (std::size_t i : result.groups_[a].recipients)
                for (std::size_t j : result.groups_[b].recipients) {
                    const pkcs7::CertificateSummary& x = result.groups_[a].certificates[i];
                    const pkcs7::CertificateSummary& y = result.groups_[b].certificates[j];
                    if (x.issuer_der == y.issuer_der && x.serial_der == y.serial_der &&
                        x.sha256_fingerprint != y.sha256_fingerprint)
                        result.names_ambiguous_ = true;
                }
    return result;
}

std::optional<std::size_t> UpstreamCertificateGroups::group_of_upstream(std::size_t upstream) const {
    if (upstream >= group_of_upstream_.size()) return std::nullopt;
    return group_of_upstream_[upstream];
}

const pkcs7::CertificateSummary* UpstreamCertificateGroups::recipient_in(const Group& group,
                                                                         const pkcs7::RecipientId& recipient) const {
    for (std::size_t certificate : group.recipients)
        if (pkcs7::names_certificate(recipient, group.certificates[certificate]))
            return &group.certificates[certificate];
    return nullptr;
}

std::vector<std::size_t> UpstreamCertificateGroups::groups_for(const pkcs7::RecipientId& recipient) const {
    std::vector<std::size_t> matching;
    for (std::size_t index = 0; index < groups_.size(); ++index)
        if (recipient_in(groups_[index], recipient)) matching.push_back(index);
    return matching;
}

UpstreamCertificateGroups::Holders UpstreamCertificateGroups::holders_of(const pkcs7::RecipientId& recipient) const {
    Holders holders;
    const pkcs7::CertificateSummary* first = nullptr;
    for (const Group& group : groups_) {
        const pkcs7::CertificateSummary* held = recipient_in(group, recipient);
        if (!held) continue;
        holders.upstreams |= group.upstream_mask;
        if (!first)
            first = held;
        else if (held->sha256_fingerprint != first->sha256_fingerprint)
            holders.ambiguous = true;
    }
    return holders;
}

std::optional<std::size_t> UpstreamCertificateGroups::group_with_key(uint64_t key) const {
    for (std::size_t index = 0; index < groups_.size(); ++index)
        if (groups_[index].key == key) return index;
    return std::nullopt;
}

}  // namespace scepproxy::proxy
