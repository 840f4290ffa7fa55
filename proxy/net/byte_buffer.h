// ByteBuffer: a growable byte buffer with a read offset, for socket input and output without zero-filling.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace scepproxy::proxy {

// Blocks of the common sizes (4 and 16 KiB) that buffers gave up, kept per thread, a few of each:
// a keep-alive connection drops its buffers after every request and takes them again with the
// next, which costs no malloc/free in the steady state. Other sizes are simply freed.
std::unique_ptr<char[]> take_spare_block(size_t capacity);
void recycle_block(std::unique_ptr<char[]> block, size_t capacity);

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
    // Bytes of storage held (what a memory budget charges), and what prepare(min_free) would leave.
    size_t capacity() const { return capacity_; }
    size_t capacity_for(size_t min_free) const;
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
    // The block goes to this thread's spare blocks, where the next buffer to grow finds it.
    void shrink_if_empty(size_t keep) {
        if (empty() && capacity_ > keep) {
            recycle_block(std::move(storage_), capacity_);
            capacity_ = 0;
        }
    }

private:
    void make_room(size_t min_free);

    std::unique_ptr<char[]> storage_;
    size_t capacity_ = 0;
    size_t begin_ = 0;
    size_t end_ = 0;
};

}  // namespace scepproxy::proxy
