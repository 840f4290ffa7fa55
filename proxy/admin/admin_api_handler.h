// AdminApiHandler: the admin listener's requests — bearer check, routing, and store/challenge work run off the control loop.
#pragma once

#include <memory>
#include <string>

#include "base/blocking_task_pool.h"
#include "conf/config.h"
#include "proxy/admin/admin_api_request.h"
#include "proxy/admin/admin_serving.h"
#include "proxy/challenge/challenge_source.h"
#include "proxy/net/loop_task_queue.h"
#include "proxy/net/request_handler.h"
#include "token/enrollment_store.h"

namespace scepproxy::proxy {

struct AdminAnswer;  // a complete answer, built on any thread

// What every admin connection shares. Owned by the ControlLoop; the handler uses it on the
// loop's thread, the pool's threads use `store` and the `serving` a request started with
// (all thread-safe). A reload replaces `serving` on the loop's thread.
struct AdminApiContext {
    std::shared_ptr<const AdminServing> serving;  // config, challenge sources, bearer token
    token::EnrollmentStore* store = nullptr;
    BlockingTaskPool* pool = nullptr;     // blocking work: challenge fetches, store calls
    LoopTaskQueue* loop_tasks = nullptr;  // brings answers back to the loop's thread
    const bool* draining = nullptr;       // the loop is shutting down: readyz says so
};

// One per admin connection. A request that needs the store or NDES runs on the pool; its
// answer is posted back to the loop, which alone touches the connection. If the connection
// closes first, the answer is dropped (and a token issued for it is revoked).
class AdminApiHandler final : public RequestHandler {
public:
    explicit AdminApiHandler(AdminApiContext& context) : context_(context) {}
    ~AdminApiHandler() override;
    void on_request(HttpConnection& connection, const IncomingRequest& request) override;
    void on_abort() override;

private:
    struct PendingRequest;

    void dispatch(HttpConnection& connection, const IncomingRequest& request, const AdminRoute& route);
    void answer_now(HttpConnection& connection, AdminAnswer answer);
    void run_on_pool(HttpConnection& connection, std::function<AdminAnswer()> work);

    AdminApiContext& context_;
    std::shared_ptr<PendingRequest> pending_;  // the request in flight, shared with its pool task
};

}  // namespace scepproxy::proxy
