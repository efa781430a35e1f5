// util/fast_div.hpp: the multiply-and-shift quotient equals the hardware's for every
// numerator its exact() bound admits (all of them for small divisors, and the top of the
// range for large ones), and exact() admits exactly n d <= 2^32; TreeShape::parent, which
// divides by k with it, is the numbering's parent for every node of the largest trees.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "hltm/tree.hpp"
#include "util/error.hpp"
#include "util/fast_div.hpp"

namespace dualnet {
namespace {

void expect_exact_below(int d, std::int64_t count) {
  ASSERT_TRUE(FastDiv::exact(d, count));
  const FastDiv by(d);
  const auto check = [&](std::int64_t from, std::int64_t to) {
    for (std::int64_t n = from; n < to; ++n) {
      const int q = by.quot(static_cast<int>(n)), r = by.rem(static_cast<int>(n));
      if (q != n / d || r != n % d) FAIL() << n << " / " << d << ": " << q << " rem " << r;
    }
  };
  check(0, count < (1 << 20) ? count : (1 << 20));
  check(count > (1 << 20) ? count - (1 << 20) : 0, count);  // where the error term is largest
}

TEST(FastDiv, QuotientsAndRemaindersAreTheHardwaresWithinTheBound) {
  for (int d = 1; d <= 64; ++d) expect_exact_below(d, std::min<std::int64_t>((std::int64_t(1) << 32) / d, INT32_MAX));
  for (int d : {100, 255, 1000, 4095, 4096, 65535, 65536, 1 << 20}) expect_exact_below(d, (std::int64_t(1) << 32) / d);
}

TEST(FastDiv, ExactAdmitsTheDocumentedRange) {
  EXPECT_TRUE(FastDiv::exact(16, std::int64_t(1) << 28));
  EXPECT_FALSE(FastDiv::exact(16, (std::int64_t(1) << 28) + 1));
  EXPECT_TRUE(FastDiv::exact(1, std::int64_t(1) << 32));
  EXPECT_FALSE(FastDiv::exact(0, 1));
  EXPECT_FALSE(FastDiv::exact(3, -1));
}

TEST(FastDiv, TreeParentIsExactForEveryNodeOfTheLargestTrees) {
  // The config's limit is 2^24 leaves; the first two are at it.
  for (const auto& dk : {std::pair<int, int>{6, 16}, {20, 2}, {15, 3}, {8, 7}}) {
    const TreeShape t(dk.first, dk.second, 1);
    const int nodes = t.n_latent + t.n_leaf;
    for (int n = 1; n < nodes; ++n)
      if (t.parent(n) != (n - 1) / t.k) FAIL() << "depth " << t.depth << " k " << t.k << " node " << n;
  }
  EXPECT_THROW(TreeShape(7, 16, 1), UsageError);      // 2^28 leaves: past the 2^27 nodes the constructor admits
  EXPECT_THROW(TreeShape(20, 16, 1), UsageError);     // a width that would overflow
  EXPECT_THROW(TreeShape(1, 100000, 1), UsageError);  // few nodes, but nodes times k past 2^32
}

}  // namespace
}  // namespace dualnet
