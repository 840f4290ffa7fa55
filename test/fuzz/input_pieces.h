// Cuts fuzz input into the pieces a socket might deliver it in: split points derived from the input itself, so a finding replays exactly.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace scepproxy::fuzz {

// Piece lengths that add up to input.size(): a mix of single bytes, short and long reads,
// chosen by a PRNG seeded with a hash of the input (the same input always splits the same way).
std::vector<size_t> pseudo_random_pieces(std::string_view input);

// input.size() pieces of one byte each: every possible split point at once.
std::vector<size_t> one_byte_pieces(std::string_view input);

}  // namespace scepproxy::fuzz
