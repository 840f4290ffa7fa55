// BufferWaitQueue: one worker's connections waiting for buffered-bytes budget, oldest first, with O(1) removal.
#pragma once

#include <cstddef>
#include <list>
#include <unordered_map>

namespace scepproxy::proxy {

// On one worker's thread only. A connection is in it at most once; one that closes is removed.
template <class T>
class BufferWaitQueue {
public:
    bool empty() const { return order_.empty(); }
    size_t size() const { return order_.size(); }
    bool contains(T* item) const { return where_.count(item) != 0; }
    T* front() const { return order_.empty() ? nullptr : order_.front(); }

    // Joins at the back; one already waiting keeps its place.
    void push_back(T* item) {
        if (contains(item)) return;
        order_.push_back(item);
        where_.emplace(item, std::prev(order_.end()));
    }
    // Back to the head of the queue (it was served first and still can't go on).
    void move_to_front(T* item) {
        auto found = where_.find(item);
        if (found == where_.end()) {
            order_.push_front(item);
            where_.emplace(item, order_.begin());
            return;
        }
        order_.splice(order_.begin(), order_, found->second);
    }
    void remove(T* item) {
        auto found = where_.find(item);
        if (found == where_.end()) return;
        order_.erase(found->second);
        where_.erase(found);
    }

private:
    std::list<T*> order_;
    std::unordered_map<T*, typename std::list<T*>::iterator> where_;
};

}  // namespace scepproxy::proxy
