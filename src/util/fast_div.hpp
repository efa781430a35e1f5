#pragma once
// n / d and n % d for a divisor fixed before a kernel runs, as a multiply and a shift. A
// hardware divide takes 10 to 40 cycles on a CPU (a sequence of instructions on a GPU), and
// the evaluation's kernels divided by a tile count, k or hid about 200 times per anchor.
// With m = floor(2^32 / d) + 1, m d = 2^32 + e for some 0 < e <= d, so n m / 2^32 exceeds
// n / d by n e / (d 2^32) < 1 / d whenever n d < 2^32: its floor is floor(n / d). Kernels
// make one where they need it (the constructor divides once); the constructor does not check
// the bound: the host does, with exact(), or the caller's comment says why it holds.
#include <cstdint>

#include "util/kokkos_compat.hpp"

namespace dualnet {

struct FastDiv {
  std::uint64_t m = 1;
  int d = 1;

  FastDiv() = default;
  KOKKOS_INLINE_FUNCTION explicit FastDiv(int divisor) : m((std::uint64_t(1) << 32) / divisor + 1), d(divisor) {}
  // Whether quot and rem are exact for every 0 <= n < count.
  static bool exact(int divisor, std::int64_t count) {
    return divisor >= 1 && count >= 0 && static_cast<std::uint64_t>(count) * divisor <= (std::uint64_t(1) << 32);
  }
  KOKKOS_INLINE_FUNCTION int quot(int n) const { return static_cast<int>((static_cast<std::uint64_t>(n) * m) >> 32); }
  KOKKOS_INLINE_FUNCTION int rem(int n) const { return n - quot(n) * d; }
};

}  // namespace dualnet
