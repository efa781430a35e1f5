// Rank-count invariance of the parts (docs/science.md#sample-stream, #exactness), run at 1, 2
// and 4 ranks: every rank's slice of the sample stream is that rank's part of the 1-rank
// stream, and every rank holds the same weights. The whole-run property (weights and metrics
// bit-identical at 1, 2 and 4 ranks, every loss) is tests/cli/test_rank_invariance.sh's. All
// collectives are made unconditionally, and checks are non-fatal, so a failure on one rank
// never leaves the others waiting.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "comm/world.hpp"
#include "config/config.hpp"
#include "hltm/hltm.hpp"
#include "train/trainer.hpp"

namespace dualnet {
namespace {

std::vector<double> host(const View1<real>& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
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

// Every rank holds the same weights as rank 0 after a few steps, for a batch-coupled and a
// per-item loss: the replicas never drift apart (each rank applies the same all-reduced
// gradient). That the weights and metrics equal a 1-rank run's is the whole-run harness
// tests/cli/test_rank_invariance.sh's.
TEST(MpiInvariance, EveryRankHoldsRankZerosWeights) {
  const World w = World::from_mpi();
  for (const char* loss : {"ref_nce", "infonce"}) {
    Config cfg;
    cfg.depth = 3;
    cfg.hid = 4;
    cfg.loss = loss;
    cfg.batch = 32;
    cfg.micro_batch = 4;  // divides batch / 4
    cfg.samples_per_pass = 1024;
    cfg.momentum = 0.9;
    cfg.seed = 7;
    cfg.out = "unused";
    ASSERT_NO_THROW(validate(cfg, w.size));
    Trainer t(cfg, w);
    const std::vector<double> init = host(t.params());
    for (std::int64_t step = 0; step < 4; ++step) t.train_step(0, step);
    const std::vector<double> mine = host(t.params());
    EXPECT_NE(mine, init) << loss << ": the steps did not change the weights";
    std::vector<double> root = mine;
    MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_DOUBLE, 0, w.comm);
    EXPECT_TRUE(std::memcmp(root.data(), mine.data(), mine.size() * sizeof(double)) == 0)
        << loss << ": rank " << w.rank << " holds other weights than rank 0";
  }
}

}  // namespace
}  // namespace dualnet
