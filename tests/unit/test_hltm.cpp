// HLTM sampler (docs/science.md#hltm, #views): edge statistics, root-to-node correlations, the share_levels
// augmentation, and the stream being a pure function of (seed, global item index).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hltm/hltm.hpp"

namespace dualnet {
namespace {

struct HostSamples {
  std::int64_t rows = 0;
  int n_latent = 0, n_leaf = 0;
  std::vector<int> latent;     // [rows][n_latent]
  std::vector<double> leaves;  // [rows][n_leaf]
  // Value of node (latents then leaves) in a row, 0 or 1.
  int value(std::int64_t row, int node) const {
    if (node < n_latent) return latent[static_cast<size_t>(row * n_latent + node)];
    const double v = leaves[static_cast<size_t>(row * n_leaf + node - n_latent)];
    return v == 1.0 ? 1 : 0;
  }
};

HostSamples draw(const TreeShape& t, const View1<real>& polarity, std::uint64_t seed, int share_levels,
                 std::int64_t first, std::int64_t items, int views) {
  SampleBatch b;
  b.allocate(t, items * views);
  sample_views(t, polarity, seed, share_levels, first, items, views, b);
  auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b.latent);
  auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b.leaves);
  HostSamples s;
  s.rows = items * views;
  s.n_latent = t.n_latent;
  s.n_leaf = t.n_leaf;
  s.latent.resize(static_cast<size_t>(s.rows * t.n_latent));
  s.leaves.resize(static_cast<size_t>(s.rows * t.n_leaf));
  for (std::int64_t r = 0; r < s.rows; ++r) {
    for (int m = 0; m < t.n_latent; ++m) s.latent[static_cast<size_t>(r * t.n_latent + m)] = hl(r, m);
    for (int l = 0; l < t.n_leaf; ++l) s.leaves[static_cast<size_t>(r * t.n_leaf + l)] = hv(r, l);
  }
  return s;
}

std::vector<double> host(const View1<real>& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}

int parent_of(const TreeShape& t, int node) { return (node - 1) / t.k; }

// Product of the polarities from `ancestor` (exclusive) down to `node` (inclusive).
double path_rho(const TreeShape& t, const std::vector<double>& pol, int ancestor, int node) {
  double r = 1.0;
  for (int n = node; n != ancestor; n = parent_of(t, n)) r *= pol[static_cast<size_t>(n)];
  return r;
}

constexpr std::uint64_t kSeed = 20240611;
constexpr std::int64_t kItems = 200000;

class Hltm : public ::testing::Test {
 protected:
  // depth 3, k 2: 7 latents, 8 leaves; weak and strong edges of both signs.
  TreeShape t{3, 2, 1};
  View1<real> pol_dev = draw_polarities(t, kSeed, 0.2, 0.9);
  std::vector<double> pol = host(pol_dev);
};

TEST_F(Hltm, PolaritiesAreInRangeWithBothSigns) {
  ASSERT_EQ(pol.size(), static_cast<size_t>(t.n_latent + t.n_leaf));
  EXPECT_TRUE(std::isnan(pol[0]));
  int neg = 0;
  for (size_t n = 1; n < pol.size(); ++n) {
    EXPECT_GE(std::fabs(pol[n]), 0.2) << n;
    EXPECT_LE(std::fabs(pol[n]), 0.9) << n;
    neg += pol[n] < 0;
  }
  EXPECT_GT(neg, 0);
  EXPECT_LT(neg, static_cast<int>(pol.size()) - 1);
  // Fixed by the seed, different for another seed.
  const auto again = host(draw_polarities(t, kSeed, 0.2, 0.9)), other = host(draw_polarities(t, kSeed + 1, 0.2, 0.9));
  EXPECT_TRUE(std::isnan(again[0]) && std::isnan(other[0]));
  EXPECT_TRUE(std::equal(again.begin() + 1, again.end(), pol.begin() + 1));
  EXPECT_FALSE(std::equal(other.begin() + 1, other.end(), pol.begin() + 1));
  const auto rho = host(root_correlations(t, pol_dev));
  EXPECT_EQ(rho[0], 1.0);
  for (int n = 1; n < t.n_latent + t.n_leaf; ++n)
    EXPECT_NEAR(rho[static_cast<size_t>(n)], path_rho(t, pol, 0, n), 1e-15);
}

TEST_F(Hltm, EdgeAgreementAndRootCorrelationMatchTheModel) {
  const HostSamples s = draw(t, pol_dev, kSeed, 1, 0, kItems, 1);
  const double n = static_cast<double>(s.rows);
  // Root uniform.
  double ones = 0;
  for (std::int64_t r = 0; r < s.rows; ++r) ones += s.value(r, 0);
  EXPECT_NEAR(ones / n, 0.5, 4.0 * std::sqrt(0.25 / n));
  for (int node = 1; node < t.n_latent + t.n_leaf; ++node) {
    const double delta = pol[static_cast<size_t>(node)];
    // P(child = parent) = (1 + delta)/2, binomial standard error.
    double agree = 0;
    for (std::int64_t r = 0; r < s.rows; ++r) agree += s.value(r, node) == s.value(r, parent_of(t, node));
    const double p = 0.5 * (1.0 + delta);
    EXPECT_NEAR(agree / n, p, 4.0 * std::sqrt(p * (1.0 - p) / n)) << "node " << node << " delta " << delta;
    // Pearson correlation of the +-1-coded root and node = product of the path's deltas.
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (std::int64_t r = 0; r < s.rows; ++r) {
      const double a = 2.0 * s.value(r, 0) - 1.0, b = 2.0 * s.value(r, node) - 1.0;
      sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
    }
    const double cov = sab / n - (sa / n) * (sb / n);
    const double corr = cov / std::sqrt((saa / n - (sa / n) * (sa / n)) * (sbb / n - (sb / n) * (sb / n)));
    const double rho = path_rho(t, pol, 0, node);
    // Var(a b) = 1 - rho^2 for +-1 variables with mean 0: sigma of the estimate.
    EXPECT_NEAR(corr, rho, 4.0 * std::sqrt((1.0 - rho * rho) / n)) << "node " << node;
  }
}

// Anchor (view 0) vs positive (view 1) agreement, node by node, for each share_levels.
TEST_F(Hltm, ShareLevelsSharesExactlyTheUpperLevels) {
  const int views = 3;  // anchor, positive, one negative
  const std::int64_t items = kItems / 2;
  for (int share = 0; share <= t.depth; ++share) {
    const HostSamples s = draw(t, pol_dev, kSeed, share, 0, items, views);
    const double n = static_cast<double>(items);
    for (int node = 0; node < t.n_latent + t.n_leaf; ++node) {
      const int level = node < t.n_latent ? t.level_of(node) : t.depth;
      double agree = 0, agree_neg = 0;
      for (std::int64_t i = 0; i < items; ++i) {
        const int a = s.value(i * views, node);
        agree += a == s.value(i * views + 1, node);
        agree_neg += a == s.value(i * views + 2, node);
      }
      // Negatives are independent full samples: agreement 1/2 everywhere (root included).
      EXPECT_NEAR(agree_neg / n, 0.5, 4.0 * std::sqrt(0.25 / n)) << "share " << share << " node " << node;
      if (level < share) {
        EXPECT_EQ(agree, n) << "share_levels " << share << ": node " << node << " (level " << level
                            << ") must be identical in anchor and positive";
        continue;
      }
      // Below the shared levels both views descend independently from the deepest shared
      // ancestor alpha (level share-1): corr = rho(alpha -> node)^2, agreement (1 + corr)/2.
      // share_levels = 0: nothing shared, independent views, agreement 1/2.
      double p = 0.5;
      if (share > 0) {
        int alpha = node;
        while ((alpha < t.n_latent ? t.level_of(alpha) : t.depth) > share - 1) alpha = parent_of(t, alpha);
        const double r = path_rho(t, pol, alpha, node);
        p = 0.5 * (1.0 + r * r);
      }
      EXPECT_NEAR(agree / n, p, 4.0 * std::sqrt(p * (1.0 - p) / n))
          << "share_levels " << share << ": node " << node << " (level " << level << ")";
      EXPECT_LT(agree, n) << "share_levels " << share << ": node " << node << " must be redrawn";
    }
  }
}

TEST_F(Hltm, StreamIsAPureFunctionOfSeedAndItemIndex) {
  const int views = 4;
  const std::int64_t a = 1000, m = 1357, b = 2003;
  const HostSamples whole = draw(t, pol_dev, kSeed, 1, a, b - a, views);
  const HostSamples left = draw(t, pol_dev, kSeed, 1, a, m - a, views);
  const HostSamples right = draw(t, pol_dev, kSeed, 1, m, b - m, views);
  std::vector<int> lat = left.latent;
  lat.insert(lat.end(), right.latent.begin(), right.latent.end());
  std::vector<double> lv = left.leaves;
  lv.insert(lv.end(), right.leaves.begin(), right.leaves.end());
  EXPECT_EQ(lat, whole.latent);
  EXPECT_EQ(lv, whole.leaves);
  // Repeatable, and item-indexed: a shifted window is a different stream, another seed too.
  EXPECT_EQ(draw(t, pol_dev, kSeed, 1, a, b - a, views).leaves, whole.leaves);
  EXPECT_NE(draw(t, pol_dev, kSeed, 1, a + 1, b - a, views).leaves, whole.leaves);
  EXPECT_NE(draw(t, pol_dev, kSeed + 1, 1, a, b - a, views).leaves, whole.leaves);
  // The anchor of an item does not depend on how many views are drawn with it.
  const HostSamples one = draw(t, pol_dev, kSeed, 1, a, b - a, 1);
  for (std::int64_t i = 0; i < b - a; ++i)
    for (int l = 0; l < t.n_leaf; ++l)
      ASSERT_EQ(one.leaves[static_cast<size_t>(i * t.n_leaf + l)],
                whole.leaves[static_cast<size_t>(i * views * t.n_leaf + l)]);
  // Leaves are exactly 0.0 or 1.0.
  for (double v : whole.leaves) ASSERT_TRUE(v == 0.0 || v == 1.0);
}

}  // namespace
}  // namespace dualnet
