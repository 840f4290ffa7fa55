// ByteBuffer: a growable byte buffer with a read offset, for socket input and output without zero-filling.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace scepproxy::proxy {

class ByteBuffer {
public:
    // Unread bytes.
    const char* data() const { return storage_.get() + begin_; }
    char* data() { return storage_.get() + begin_; }
    size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    std::string_view view() const { return {data(), size()}; }

    // Room to append at least `min_free` bytes; returns the write pointer.
    char* prepare(size_t min_free) {
        if (capacity_ - end_ < min_free) make_room(min_free);
        return storage_.get() + end_;
    }
    size_t free_space() const { return capacity_ - end_; }
    void commit(size_t n) { end_ += n; }

    void append(std::string_view bytes) {
        if (bytes.empty()) return;  // an empty view may have a null data(): memcpy must not see it
        std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
        commit(bytes.size());
    }
    void consume(size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    void clear() { begin_ = end_ = 0; }

    // Drops storage above `keep` bytes of capacity when empty (idle keep-alive connections stay small).
    void shrink_if_empty(size_t keep) {
        if (empty() && capacity_ > keep) {
            storage_.reset();
            capacity_ = 0;
        }
    }

private:
    void make_room(size_t min_free) {
        const size_t used = size();
        if (begin_ > 0 && capacity_ - used >= min_free) {  // compact in place
            std::memmove(storage_.get(), data(), used);
        } else {
            size_t capacity = capacity_ ? capacity_ : 4096;
            while (capacity - used < min_free) capacity *= 2;
            std::unique_ptr<char[]> grown(new char[capacity]);
            if (used) std::memcpy(grown.get(), data(), used);
            storage_ = std::move(grown);
            capacity_ = capacity;
        }
        begin_ = 0;
        end_ = used;
    }

    std::unique_ptr<char[]> storage_;
    size_t capacity_ = 0;
    size_t begin_ = 0;
    size_t end_ = 0;
};

}  // namespace scepproxy::proxy
