// ByteBuffer's growth, and the per-thread spare blocks that spare keep-alive connections a malloc/free per request.
#include "proxy/net/byte_buffer.h"

#include <array>
#include <vector>

namespace scepproxy::proxy {
namespace {

constexpr size_t kSmallBlock = 4096;   // a buffer's first size
constexpr size_t kLargeBlock = 16384;  // a socket read's chunk
constexpr size_t kSparesPerSize = 16;  // per thread: at most 16 x (4 + 16) KiB held

struct SpareBlocks {
    std::array<std::vector<std::unique_ptr<char[]>>, 2> by_size;  // [0]: 4 KiB, [1]: 16 KiB

    std::vector<std::unique_ptr<char[]>>* list_for(size_t capacity) {
        if (capacity == kSmallBlock) return &by_size[0];
        if (capacity == kLargeBlock) return &by_size[1];
        return nullptr;
    }
};

SpareBlocks& spare_blocks() {
    thread_local SpareBlocks spares;
    return spares;
}

}  // namespace

std::unique_ptr<char[]> take_spare_block(size_t capacity) {
    std::vector<std::unique_ptr<char[]>>* list = spare_blocks().list_for(capacity);
    if (list == nullptr || list->empty()) return std::unique_ptr<char[]>(new char[capacity]);
    std::unique_ptr<char[]> block = std::move(list->back());
    list->pop_back();
    return block;
}

void recycle_block(std::unique_ptr<char[]> block, size_t capacity) {
    std::vector<std::unique_ptr<char[]>>* list = spare_blocks().list_for(capacity);
    if (list == nullptr || list->size() >= kSparesPerSize) return;  // freed here
    if (list->capacity() == 0) list->reserve(kSparesPerSize);       // never grows after this
    list->push_back(std::move(block));
}

size_t ByteBuffer::capacity_for(size_t min_free) const {
    const size_t used = size();
    if (capacity_ - used >= min_free) return capacity_;  // fits, perhaps after compacting in place
    size_t capacity = capacity_ ? capacity_ : kSmallBlock;
    while (capacity - used < min_free) capacity *= 2;
    return capacity;
}

void ByteBuffer::make_room(size_t min_free) {
    const size_t used = size();
    if (begin_ > 0 && capacity_ - used >= min_free) {  // compact in place
        std::memmove(storage_.get(), data(), used);
    } else {
        const size_t capacity = capacity_for(min_free);
        std::unique_ptr<char[]> grown = take_spare_block(capacity);
        if (used) std::memcpy(grown.get(), data(), used);
        if (storage_) recycle_block(std::move(storage_), capacity_);
        storage_ = std::move(grown);
        capacity_ = capacity;
    }
    begin_ = 0;
    end_ = used;
}

}  // namespace scepproxy::proxy
