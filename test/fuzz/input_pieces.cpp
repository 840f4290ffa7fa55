// Split points for the split-input fuzz targets: FNV-1a of the input seeds an xorshift PRNG.
#include "test/fuzz/input_pieces.h"

#include <algorithm>
#include <cstdint>

namespace scepproxy::fuzz {
namespace {

uint64_t fnv1a(std::string_view bytes) {
    uint64_t hash = 0xcbf29ce484222325ull;
    for (unsigned char c : bytes) {
        hash ^= c;
        hash *= 0x100000001b3ull;
    }
    return hash;
}

}  // namespace

std::vector<size_t> pseudo_random_pieces(std::string_view input) {
    // Read sizes worth mixing: single bytes hit every state boundary, the others whole lines and heads.
    static constexpr size_t kMaxPiece[] = {1, 3, 17, 200, 4096};
    uint64_t state = fnv1a(input) | 1;  // xorshift never leaves 0
    std::vector<size_t> pieces;
    size_t left = input.size();
    while (left > 0) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        const size_t max_piece = kMaxPiece[state % std::size(kMaxPiece)];
        const size_t piece = std::min(left, 1 + static_cast<size_t>((state >> 8) % max_piece));
        pieces.push_back(piece);
        left -= piece;
    }
    return pieces;
}

std::vector<size_t> one_byte_pieces(std::string_view input) { return std::vector<size_t>(input.size(), 1); }

}  // namespace scepproxy::fuzz
