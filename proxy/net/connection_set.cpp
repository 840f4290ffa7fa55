// ConnectionSet: O(1) add/remove by slot index; deletions deferred to a manually activated event.
#include "proxy/net/connection_set.h"

#include <event2/event.h>

#include "proxy/net/http_connection.h"

namespace scepproxy::proxy {

ConnectionSet::ConnectionSet(event_base* base, std::function<void()> after_reap)
    : reap_event_(event_new(base, -1, 0, &ConnectionSet::on_reap, this)), after_reap_(std::move(after_reap)) {}

ConnectionSet::~ConnectionSet() {
    clear();
    event_free(reap_event_);
}

void ConnectionSet::clear() {
    auto connections = std::move(connections_);
    connections_.clear();
    for (HttpConnection* c : connections) delete c;
    while (!pending_.empty()) {
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& free_it : pending) free_it();
    }
}

void ConnectionSet::add(HttpConnection* connection) {
    connection->set_slot(connections_.size());
    connections_.push_back(connection);
}

void ConnectionSet::remove(HttpConnection* connection) {
    const size_t slot = connection->slot();
    if (slot < connections_.size() && connections_[slot] == connection) {
        connections_[slot] = connections_.back();
        connections_[slot]->set_slot(slot);
        connections_.pop_back();
    }
    delete_later(connection);
}

void ConnectionSet::drain_all() {
    const auto snapshot = connections_;  // on_drain may close (and remove) connections
    for (HttpConnection* c : snapshot) c->on_drain();
}

void ConnectionSet::schedule_reap() {
    if (!event_pending(reap_event_, EV_TIMEOUT, nullptr)) event_active(reap_event_, EV_TIMEOUT, 0);
}

void ConnectionSet::on_reap(int, short, void* arg) { static_cast<ConnectionSet*>(arg)->reap(); }

void ConnectionSet::reap() {
    while (!pending_.empty()) {
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& free_it : pending) free_it();
    }
    if (after_reap_) after_reap_();
}

}  // namespace scepproxy::proxy
