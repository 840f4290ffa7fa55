// Tests for ByteBuffer: append/consume, compaction and growth keep the unread bytes intact.
#include <catch2/catch.hpp>

#include <string>

#include "proxy/net/byte_buffer.h"

using namespace scepproxy::proxy;

TEST_CASE("appends, consumes and grows without losing bytes", "[byte_buffer]") {
    ByteBuffer buffer;
    std::string expected;
    for (int i = 0; i < 2000; ++i) {
        const std::string piece = std::to_string(i) + ",";
        buffer.append(piece);
        expected += piece;
        if (i % 7 == 0) {
            const size_t n = std::min<size_t>(5, buffer.size());
            buffer.consume(n);
            expected.erase(0, n);
        }
        REQUIRE(buffer.view() == expected);
    }
}

TEST_CASE("prepare/commit writes after the unread bytes", "[byte_buffer]") {
    ByteBuffer buffer;
    buffer.append("abc");
    buffer.consume(1);
    char* space = buffer.prepare(10000);
    REQUIRE(buffer.free_space() >= 10000);
    space[0] = 'd';
    buffer.commit(1);
    CHECK(buffer.view() == "bcd");
    buffer.consume(3);
    CHECK(buffer.empty());
    buffer.shrink_if_empty(0);
    CHECK(buffer.free_space() == 0);
}

TEST_CASE("a block given up when empty serves the next buffer of that size on this thread", "[byte_buffer]") {
    ByteBuffer first;
    first.append("x");
    const char* block = first.data();
    first.consume(1);
    first.shrink_if_empty(0);
    CHECK(first.free_space() == 0);

    ByteBuffer second;
    second.append("y");
    CHECK(second.data() == block);  // no malloc: the spare block
    CHECK(second.view() == "y");
}

TEST_CASE("growing into spare blocks keeps the unread bytes", "[byte_buffer]") {
    std::string expected;
    ByteBuffer buffer;
    for (int round = 0; round < 3; ++round) {
        // 4 KiB -> 8 KiB -> 16 KiB -> 32 KiB, then given up: the 16 KiB and 4 KiB sizes are kept spare.
        for (int i = 0; i < 3000; ++i) {
            const std::string piece = std::to_string(round) + ":" + std::to_string(i) + ",";
            buffer.append(piece);
            expected += piece;
        }
        REQUIRE(buffer.view() == expected);
        buffer.consume(buffer.size());
        expected.clear();
        buffer.shrink_if_empty(0);
        CHECK(buffer.empty());
    }
}

TEST_CASE("capacity_for says what prepare will leave: as is, compacted in place, or doubled", "[byte_buffer]") {
    ByteBuffer buffer;
    CHECK(buffer.capacity() == 0);
    CHECK(buffer.capacity_for(100) == 4096);  // the first block
    CHECK(buffer.capacity_for(5000) == 8192);
    buffer.append(std::string(3000, 'a'));
    CHECK(buffer.capacity() == 4096);
    CHECK(buffer.capacity_for(1000) == 4096);  // fits
    buffer.consume(2000);
    CHECK(buffer.capacity_for(2000) == 4096);  // fits after moving the 1000 unread bytes to the front
    buffer.prepare(2000);
    CHECK(buffer.capacity() == 4096);
    CHECK(buffer.capacity_for(20000) == 32768);  // doubled until 20000 fit after the 1000 unread bytes
    buffer.prepare(20000);
    CHECK(buffer.capacity() == 32768);
    CHECK(buffer.view() == std::string(1000, 'a'));
}
