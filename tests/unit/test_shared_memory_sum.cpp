// The gradient's sum through a shared-memory window (comm/shared_memory_sum.hpp), run at 1,
// 2 and 4 ranks: its sums are MPI_Allreduce's, bit for bit, round after round while the
// ranks run at different speeds and reuse their buffers (the two alternating slots), and
// the reducer picks it as documented. All collectives are made unconditionally, and checks
// are non-fatal, so a failure on one rank never leaves the others waiting.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "comm/reducer.hpp"
#include "comm/shared_memory_sum.hpp"
#include "comm/world.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

// Rank r's entry i in round k: large, of both signs, different on every rank and round.
std::int64_t value(int r, int k, std::int64_t i) {
  std::uint64_t x =
      static_cast<std::uint64_t>(i) + 0x9e3779b97f4a7c15u * (static_cast<std::uint64_t>(r) * 131u + k + 1);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;  // splitmix64's finaliser
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  x ^= x >> 31;
  return static_cast<std::int64_t>(x >> 6) - (std::int64_t(1) << 57);  // |x| < 2^57: no overflow at 4 ranks
}

void fill(const View1<std::int64_t>& buf, int r, int k) {
  auto h = Kokkos::create_mirror_view(buf);
  for (std::size_t i = 0; i < h.extent(0); ++i) h(i) = value(r, k, static_cast<std::int64_t>(i));
  Kokkos::deep_copy(buf, h);
}

std::vector<std::int64_t> host(const View1<std::int64_t>& buf) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buf);
  return std::vector<std::int64_t>(h.data(), h.data() + h.extent(0));
}

// Rounds of publish / collect against the exact sums (what MPI_Allreduce gives). As the
// trainer does, each rank publishes its next buffer as soon as a sum is collected, while
// the others may still be reading theirs; the ranks take turns at being late, overwrite
// their buffer right after publishing, and the buffers are large (8 MB), so a rank that
// wrote a slot a peer was still reading, or a sum read before every slot was written,
// changes a sum.
TEST(SharedMemorySum, SumsAreExactRoundAfterRound) {
  const World w = World::from_mpi();
  if (!Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible) GTEST_SKIP() << "device memory";
  const std::int64_t n = std::int64_t(1) << 20;
  const int rounds = 12;
  SharedMemorySum sum(w.comm, n);
  View1<std::int64_t> buf("buf", n), next("next", n);
  std::vector<std::int64_t> expected(static_cast<std::size_t>(n));
  int wrong_rounds = 0;
  fill(next, w.rank, 0);
  sum.publish(next);
  for (int k = 0; k < rounds; ++k) {
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t e = 0;
      for (int r = 0; r < w.size; ++r) e += value(r, k, i);
      expected[static_cast<std::size_t>(i)] = e;
    }
    fill(next, w.rank, k + 1);
    if (w.rank == k % w.size) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    sum.collect(buf);
    if (k + 1 < rounds) sum.publish(next);  // at once: a peer may still be adding round k
    fill(next, w.rank, k + 100);            // what the caller does with its buffer meanwhile
    if (host(buf) != expected) ++wrong_rounds;
  }
  EXPECT_EQ(wrong_rounds, 0) << "of " << rounds << " rounds at " << w.size << " ranks";
}

// What reducer=auto|mpi|shm choose, and that every choice sums the gradient alike.
TEST(SharedMemorySum, ReducerChoices) {
  const World w = World::from_mpi();
  const bool host_memory = Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;
  const bool nccl = !host_memory && w.size > 1;  // auto picks NCCL there (a CUDA build)
  if (!nccl) {
    const std::string want = w.size == 1 ? "serial" : "mpi, gradient through shared memory";
    EXPECT_EQ(make_reducer(w, "auto")->name(), want);
  }
  if (w.size > 1) {
    EXPECT_EQ(make_reducer(w, "mpi")->name(), "mpi");
  }
  const std::int64_t n = 6601;
  std::vector<std::int64_t> expected(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    for (int r = 0; r < w.size; ++r) expected[static_cast<std::size_t>(i)] += value(r, 3, i);
  for (const char* choice : {"mpi", "shm"}) {
    if (std::string(choice) == "shm" && !host_memory) continue;
    const auto reducer = make_reducer(w, choice);
    View1<std::int64_t> buf("buf", n);
    for (int round = 0; round < 3; ++round) {  // the window is made once and reused
      fill(buf, w.rank, 3);
      reducer->start_sum(buf);
      reducer->finish_sum();
      EXPECT_EQ(host(buf), expected) << choice << ", round " << round;
    }
  }
  // Ranks on several hosts (as World says) cannot share a window: refused before any MPI call.
  World spread = w;
  spread.size = 2;
  spread.local_size = 1;
  spread.nodes = 2;
  EXPECT_THROW(make_reducer(spread, "shm"), UsageError);
}

}  // namespace
}  // namespace dualnet
