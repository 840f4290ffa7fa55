// The bind and finish algorithm every SQL backend shares: one atomic conditional write, then classify.
#pragma once

#include <utility>

#include "token/enrollment_store.h"

namespace scepproxy::token {

// How many times a write that lost to a concurrent change is tried again before giving up.
inline constexpr int kBindingAttempts = 3;

// `read_facts()` returns StoreResult<BindingFacts>, not_found for an unknown token.
// `try_bind()` runs the backend's atomic "bind if free" write
//   (UPDATE ... SET transaction_id = ? WHERE hash = ? AND transaction_id IS NULL AND not
//   revoked, consumed or expired) and returns StoreResult<bool>: whether it changed a row.
// The row is read first: a resend or poll of the bound transaction (the common case: clients
// resend after PENDING) is answered by that read, without taking the write lock. Only a free
// token is written to, and the write is what makes racing binders safe: exactly one changes
// the row; losers read it again and learn why (usually transaction_mismatch).
template <class TryBind, class ReadFacts>
BindDecision run_bind(const BindQuery& query, TryBind&& try_bind, ReadFacts&& read_facts) {
    BindDecision decision;
    if (const char* problem = transaction_id_problem(query.transaction_id)) {
        decision.verdict = BindVerdict::transaction_invalid;
        decision.message = problem;
        return decision;
    }
    for (int attempt = 0; attempt < kBindingAttempts; ++attempt) {
        auto facts = read_facts();
        if (facts.status == StoreStatus::not_found) {
            decision.verdict = BindVerdict::token_unknown;
            return decision;
        }
        if (!facts.ok()) {
            decision.message = std::move(facts.message);
            return decision;  // store_unavailable
        }
        decision.verdict = bind_verdict(facts.value, query);
        // `bound` here means the token is free and this query may bind it: write.
        if (decision.verdict != BindVerdict::bound) return decision;
        auto changed = try_bind();
        if (!changed.ok()) {
            decision.verdict = BindVerdict::store_unavailable;
            decision.message = std::move(changed.message);
            return decision;
        }
        if (changed.value) return decision;
        // Changed between our read and our write (bound elsewhere, revoked, ...): read again.
    }
    decision.verdict = BindVerdict::store_unavailable;
    decision.message = "transaction binding kept changing under concurrent updates";
    return decision;
}

// `try_finish()` runs the backend's conditional write for query.end
//   consume: SET consumed_at = COALESCE(consumed_at, now) WHERE hash = ? AND transaction_id = ?
//   release: SET transaction_id = NULL WHERE hash = ? AND transaction_id = ? AND consumed_at IS NULL
// and returns StoreResult<bool>: whether it matched a row. `read_facts()` as for run_bind.
template <class TryFinish, class ReadFacts>
FinishResult run_finish(const FinishQuery& query, TryFinish&& try_finish, ReadFacts&& read_facts) {
    FinishResult result;
    if (const char* problem = transaction_id_problem(query.transaction_id)) {
        result.status = StoreStatus::invalid;
        result.message = problem;
        return result;
    }
    for (int attempt = 0; attempt < kBindingAttempts; ++attempt) {
        auto matched = try_finish();
        if (!matched.ok()) {
            result.message = std::move(matched.message);
            return result;  // unavailable
        }
        if (matched.value) {
            result.status = StoreStatus::ok;
            return result;
        }
        auto facts = read_facts();
        if (!facts.ok()) {
            result.status = facts.status == StoreStatus::not_found ? StoreStatus::not_found : StoreStatus::unavailable;
            result.message = std::move(facts.message);
            return result;
        }
        const FinishPlan plan = finish_plan(facts.value, query);
        if (!plan.write) {
            result.status = plan.status;
            if (plan.status == StoreStatus::conflict) result.message = "token is not bound to this transaction";
            return result;
        }
        // The row now matches (it changed between the write and the read): write again.
    }
    result.status = StoreStatus::unavailable;
    result.message = "transaction state kept changing under concurrent updates";
    return result;
}

}  // namespace scepproxy::token
