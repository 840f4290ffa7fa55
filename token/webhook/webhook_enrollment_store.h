// The webhook EnrollmentStore backend: tokens in the local SQLite store, compliance decided by the MDM's webhook.
#pragma once

#include <memory>

#include "token/enrollment_store.h"
#include "token/sqlite/sqlite_enrollment_store.h"
#include "token/store_observer.h"
#include "token/webhook/webhook_client.h"

namespace scepproxy::token::webhook {

struct WebhookStoreOptions {
    sqlite::SqliteStoreOptions local;  // where issued tokens and device records live
    WebhookOptions webhook;
    unsigned concurrency = 8;           // webhook requests in flight at once (threads)
    size_t max_queued = 4096;           // waiting for a thread; beyond: unavailable
    StoreObserver* observer = nullptr;  // may be null; must outlive the store
};

// Everything but compliance is the local SQLite store's. An access check on a PKIOperation
// (check_device) whose token passes the local checks (known, not expired, not revoked, a
// device record that is enrolled and compliant) then asks the webhook:
//   {"allow": true}                    -> allow
//   {"allow": false, "reason": "..."}  -> device_not_compliant, the reason in the message
//                                         (and a store_webhook_denied event for the log)
//   timeout, non-2xx, malformed answer -> store_unavailable with the profile set, so that
//                                         `on_error: allow` can let it through
// GetCACert/GetCACaps (no device check) never reach the webhook. Binding is local.
// When `operation` is empty on a device check, "PKIOperation" is sent (the only operation
// that checks devices).
StoreResult<std::unique_ptr<EnrollmentStore>> open_webhook_enrollment_store(const WebhookStoreOptions& options);

}  // namespace scepproxy::token::webhook
