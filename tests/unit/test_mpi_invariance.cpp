// Rank-count invariance (docs/science.md#sample-stream, #exactness; util/fixed_point.hpp): run at 1, 2 and 4 ranks. Every
// rank compares the distributed computation with a 1-rank computation of its own (a Trainer
// on a World over MPI_COMM_SELF). All collectives are made unconditionally, and checks are
// non-fatal, so a failure on one rank never leaves the others waiting.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "comm/world.hpp"
#include "config/config.hpp"
#include "hltm/hltm.hpp"
#include "train/trainer.hpp"

namespace dualnet {
namespace {

World self_world() {
  World w;
  w.comm = MPI_COMM_SELF;
  w.rank = 0;
  w.size = 1;
  w.local_rank = 0;
  w.nodes = 1;
  return w;
}

std::vector<double> host(const View1<real>& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}

// |a - b| <= tol * max(1, |b|) element-wise; returns the number of mismatches.
int mismatches(const std::vector<double>& a, const std::vector<double>& b, double tol, const std::string& what) {
  if (a.size() != b.size()) {
    ADD_FAILURE() << what << ": sizes " << a.size() << " vs " << b.size();
    return 1;
  }
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool same_nan = std::isnan(a[i]) && std::isnan(b[i]);
    if (!same_nan && !(std::fabs(a[i] - b[i]) <= tol * std::max(1.0, std::fabs(b[i])))) {
      if (++bad <= 5) ADD_FAILURE() << what << "[" << i << "]: " << a[i] << " vs 1-rank " << b[i];
    }
  }
  return bad;
}

void expect_same_stats(const EvalResult& r, const EvalResult& s, const std::string& when) {
  EXPECT_EQ(r.samples, s.samples) << when;
  EXPECT_EQ(mismatches(r.corr_full, s.corr_full, 1e-12, when + " corr_full"), 0);
  EXPECT_EQ(mismatches(r.corr, s.corr, 1e-12, when + " corr"), 0);
  EXPECT_EQ(mismatches(r.best_corr, s.best_corr, 1e-12, when + " best_corr"), 0);
  EXPECT_EQ(mismatches(r.level_mean_best_corr, s.level_mean_best_corr, 1e-12, when + " level_mean_best_corr"), 0);
  EXPECT_EQ(mismatches(r.covop_norm_ref, s.covop_norm_ref, 1e-12, when + " covop_norm_ref"), 0);
  EXPECT_EQ(mismatches(r.covop_norm_paper, s.covop_norm_paper, 1e-12, when + " covop_norm_paper"), 0);
  EXPECT_EQ(mismatches(r.gram_paper, s.gram_paper, 1e-12, when + " gram_paper"), 0);
  // The evaluation sums are exact (fixed point per block of anchors, integer all-reduce), so
  // the statistics are in fact the same bits.
  const auto same_bits = [](const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
  };
  EXPECT_TRUE(same_bits(r.corr_full, s.corr_full) && same_bits(r.corr, s.corr) && same_bits(r.best_corr, s.best_corr) &&
              same_bits(r.level_mean_best_corr, s.level_mean_best_corr) &&
              same_bits(r.covop_norm_ref, s.covop_norm_ref) && same_bits(r.covop_norm_paper, s.covop_norm_paper) &&
              same_bits(r.gram_paper, s.gram_paper))
      << when << ": statistics are not bit-identical to the 1-rank run";
}

TEST(MpiInvariance, SampleStreamSlicesConcatenateToTheOneRankStream) {
  const World w = World::from_mpi();
  const TreeShape t(4, 2, 1);
  const View1<real> pol = draw_polarities(t, 31, 0.5, 1.0);
  const std::int64_t first = 5000, n = 1003;  // not a multiple of any rank count used
  const int views = 3;
  // The whole range on this rank alone.
  SampleBatch all;
  all.allocate(t, n * views);
  sample_views(t, pol, 31, 1, first, n, views, all);
  auto all_l = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.leaves);
  auto all_z = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.latent);
  // This rank's slice.
  const std::int64_t begin = n * w.rank / w.size, end = n * (w.rank + 1) / w.size, items = end - begin;
  std::vector<double> mine_l(static_cast<size_t>(items * views * t.n_leaf));
  std::vector<int> mine_z(static_cast<size_t>(items * views * t.n_latent));
  if (items > 0) {
    SampleBatch part;
    part.allocate(t, items * views);
    sample_views(t, pol, 31, 1, first + begin, items, views, part);
    auto pl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), part.leaves);
    auto pz = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), part.latent);
    int bad = 0;
    for (std::int64_t r = 0; r < items * views; ++r) {
      for (int l = 0; l < t.n_leaf; ++l) {
        mine_l[static_cast<size_t>(r * t.n_leaf + l)] = pl(r, l);
        bad += pl(r, l) != all_l(begin * views + r, l);
      }
      for (int m = 0; m < t.n_latent; ++m) {
        mine_z[static_cast<size_t>(r * t.n_latent + m)] = pz(r, m);
        bad += pz(r, m) != all_z(begin * views + r, m);
      }
    }
    EXPECT_EQ(bad, 0) << "rank " << w.rank << ": slice [" << begin << ", " << end << ") differs from the 1-rank stream";
  }
  // The concatenation of every rank's slice is the 1-rank stream.
  std::vector<int> counts(static_cast<size_t>(w.size)), displs(static_cast<size_t>(w.size));
  for (int r = 0; r < w.size; ++r) {
    const std::int64_t b = n * r / w.size, e = n * (r + 1) / w.size;
    counts[static_cast<size_t>(r)] = static_cast<int>((e - b) * views * t.n_leaf);
    displs[static_cast<size_t>(r)] = static_cast<int>(b * views * t.n_leaf);
  }
  std::vector<double> gathered(static_cast<size_t>(n * views * t.n_leaf), -1.0);
  MPI_Allgatherv(mine_l.data(), static_cast<int>(mine_l.size()), MPI_DOUBLE, gathered.data(), counts.data(),
                 displs.data(), MPI_DOUBLE, w.comm);
  std::vector<double> whole(gathered.size());
  for (std::int64_t r = 0; r < n * views; ++r)
    for (int l = 0; l < t.n_leaf; ++l) whole[static_cast<size_t>(r * t.n_leaf + l)] = all_l(r, l);
  EXPECT_TRUE(gathered == whole) << "concatenated slices differ from the 1-rank stream";
}

struct TrainerCase {
  std::string loss;
  int negatives;
};

void PrintTo(const TrainerCase& c, std::ostream* os) { *os << c.loss << " H=" << c.negatives; }

class TrainerInvariance : public ::testing::TestWithParam<TrainerCase> {};

TEST_P(TrainerInvariance, StatisticsAndStepsMatchOneRank) {
  const World w = World::from_mpi();
  Config cfg;
  cfg.depth = 3;
  cfg.hid = 4;
  cfg.loss = GetParam().loss;
  cfg.negatives = GetParam().negatives;
  cfg.batch = 32;
  cfg.micro_batch = 4;  // divides batch / 4
  cfg.samples_per_pass = 1024;
  cfg.eval_chunk = 100;  // chunk boundaries differ between rank counts
  cfg.seed = 7;
  cfg.out = "unused";
  ASSERT_NO_THROW(validate(cfg, w.size));

  Trainer dist(cfg, w), one(cfg, self_world());
  const std::vector<double> init = host(one.params());
  EXPECT_TRUE(host(dist.params()) == init);

  // Epoch-0 statistics.
  expect_same_stats(dist.evaluate(0), one.evaluate(0), "epoch 0");

  // One SGD step: weights agree to 1e-6 and, since the gradient all-reduce is integer, exactly.
  dist.train_step(0, 0);
  one.train_step(0, 0);
  std::vector<double> pd = host(dist.params()), po = host(one.params());
  EXPECT_EQ(mismatches(pd, po, 1e-6, "weights after one step"), 0);
  EXPECT_TRUE(std::memcmp(pd.data(), po.data(), pd.size() * sizeof(double)) == 0)
      << "weights after one step are not bit-identical to the 1-rank run";
  double moved = 0.0;
  for (size_t i = 0; i < po.size(); ++i) moved = std::max(moved, std::fabs(po[i] - init[i]));
  EXPECT_GT(moved, 1e-6) << "the step did not change the weights";

  // A few more steps and the next evaluation.
  for (std::int64_t step = 1; step < 4; ++step) {
    dist.train_step(0, step);
    one.train_step(0, step);
  }
  pd = host(dist.params());
  po = host(one.params());
  EXPECT_TRUE(std::memcmp(pd.data(), po.data(), pd.size() * sizeof(double)) == 0)
      << "weights after four steps are not bit-identical to the 1-rank run";
  expect_same_stats(dist.evaluate(1), one.evaluate(1), "epoch 1");

  // And every rank holds the same weights as rank 0.
  std::vector<double> root = pd;
  MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_DOUBLE, 0, w.comm);
  EXPECT_TRUE(std::memcmp(root.data(), pd.data(), pd.size() * sizeof(double)) == 0) << "rank " << w.rank;
}

INSTANTIATE_TEST_SUITE_P(Losses, TrainerInvariance,
                         ::testing::Values(TrainerCase{"ref_nce", 1}, TrainerCase{"infonce", 2},
                                           TrainerCase{"simp", 1}, TrainerCase{"ref_subtract", 3}),
                         [](const ::testing::TestParamInfo<TrainerCase>& i) {
                           return i.param.loss + "_H" + std::to_string(i.param.negatives);
                         });

}  // namespace
}  // namespace dualnet
