// Groups a profile's upstreams by their GetCACert certificates and finds the group a request's recipient names.
#include "proxy/scep/upstream_certificate_groups.h"

#include <algorithm>

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
        result.group_of_upstream_[upstream] = static_cast<std::size_t>(same - result.groups_.begin());
    }
    for (Group& group : result.groups_) {
        for (std::size_t i = 0; i < group.certificates.size(); ++i)
            if (is_encryption_role(group.certificates[i].role)) group.recipients.push_back(i);
        if (group.recipients.empty()) {  // no RA (scepserver, a CA answering itself): devices encrypt to the CA
            for (std::size_t i = 0; i < group.certificates.size(); ++i)
                if (group.certificates[i].role == pkcs7::CertificateRole::ca) group.recipients.push_back(i);
        }
    }
    return result;
}

std::optional<std::size_t> UpstreamCertificateGroups::group_of_upstream(std::size_t upstream) const {
    if (upstream >= group_of_upstream_.size()) return std::nullopt;
    return group_of_upstream_[upstream];
}

std::vector<std::size_t> UpstreamCertificateGroups::groups_for(const pkcs7::RecipientId& recipient) const {
    std::vector<std::size_t> matching;
    for (std::size_t index = 0; index < groups_.size(); ++index) {
        const Group& group = groups_[index];
        if (std::any_of(group.recipients.begin(), group.recipients.end(), [&](std::size_t certificate) {
                return pkcs7::names_certificate(recipient, group.certificates[certificate]);
            }))
            matching.push_back(index);
    }
    return matching;
}

}  // namespace scepproxy::proxy
