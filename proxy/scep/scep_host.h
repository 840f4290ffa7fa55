// ScepHost: what a SCEP request handler needs from the worker that runs it (a narrow interface, faked in tests).
#pragma once

#include <memory>

#include "conf/config.h"
#include "proxy/limits/rate_limiter.h"
#include "proxy/scep/scep_profile.h"
#include "proxy/telemetry/metrics.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

class ScepHost {
public:
    // The configuration new requests start with; a request keeps the one it started with.
    virtual std::shared_ptr<ScepGeneration> scep_generation() = 0;
    virtual token::EnrollmentSession& store_session() = 0;
    // Receives the answers of transaction finishes (SUCCESS consumes, FAILURE releases): the
    // worker owns them, so a handler that is gone or on its next request owes the store nothing.
    virtual token::SessionCallback& transaction_finish_logger() = 0;
    virtual RateLimiter& client_request_limiter() = 0;
    virtual RateLimiter& token_request_limiter() = 0;
    virtual WorkerMetrics& metrics() = 0;
    virtual const conf::LimitsConfig& limits() const = 0;

protected:
    ~ScepHost() = default;
};

}  // namespace scepproxy::proxy
