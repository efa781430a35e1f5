// The launch and synchronisation budget of the training step and of the evaluation
// (docs/gpu.md#step-budget), counted on the CPU: Kokkos Tools callbacks see every kernel
// launch, deep copy and (Kokkos 4) fence; util/device_sync.hpp counts the waits dualnet
// makes itself. A host build counts what a GPU build of the same code launches and waits
// for, so a change that adds a launch or a host synchronisation to the step fails here,
// without a GPU. Run at 1 and 2 ranks (the MPI reducer's copies through host memory are host
// waits on a GPU).
#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>

#include "comm/world.hpp"
#include "config/config.hpp"
#include "train/trainer.hpp"
#include "util/device_sync.hpp"

namespace dualnet {
namespace {

// The budget (issue: at most 8 launches and, without profiling, one host wait per step).
constexpr int kStepLaunches = 8;
constexpr int kStepWaits = 1;
constexpr int kEvalChunkLaunches = 7;

// What Kokkos reported since the last reset.
struct Seen {
  std::map<std::string, int> launches;  // by kernel name
  int copies = 0;                       // deep copies (and fills)
  int fences = 0;                       // fences Kokkos reports (Kokkos 4; 3.4 reports none)
  int total_launches() const {
    int n = 0;
    for (const auto& [name, count] : launches) n += count;
    return n;
  }
  std::string names() const {
    std::ostringstream o;
    for (const auto& [name, count] : launches) o << "  " << count << " x " << name << "\n";
    return o.str();
  }
};
Seen seen;

void on_launch(const char* name, std::uint32_t, std::uint64_t*) { ++seen.launches[name]; }
void on_copy(Kokkos::Tools::SpaceHandle, const char*, const void*, Kokkos::Tools::SpaceHandle, const char*, const void*,
             std::uint64_t) {
  ++seen.copies;
}
void on_fence(const char* name, std::uint32_t, std::uint64_t*) {
  // Not counted again: dualnet's own fences (host_waits() has them), a deep copy's (the copy
  // counts), and those Kokkos 4 puts around each kernel for a tool that does not say it
  // needs none (this one).
  const std::string n(name);
  if (n.rfind("dualnet: ", 0) != 0 && n.rfind("Kokkos::deep_copy", 0) != 0 &&
      n.find("Kokkos Profile Tool Fence") == std::string::npos)
    ++seen.fences;
}

// Counts for the lifetime of the object, then unregisters the callbacks.
class Counting {
 public:
  Counting() {
    using namespace Kokkos::Tools::Experimental;
    set_begin_parallel_for_callback(on_launch);
    set_begin_parallel_reduce_callback(on_launch);
    set_begin_parallel_scan_callback(on_launch);
    set_begin_deep_copy_callback(on_copy);
    set_begin_fence_callback(on_fence);
    reset();
  }
  ~Counting() {
    using namespace Kokkos::Tools::Experimental;
    set_begin_parallel_for_callback(nullptr);
    set_begin_parallel_reduce_callback(nullptr);
    set_begin_parallel_scan_callback(nullptr);
    set_begin_deep_copy_callback(nullptr);
    set_begin_fence_callback(nullptr);
  }
  void reset() {
    seen = Seen{};
    waits0_ = host_waits();
  }
  // Host waits since reset(): dualnet's, Kokkos's fences, and every deep copy (a copy
  // involving the device waits for it).
  std::int64_t waits() const { return host_waits() - waits0_ + seen.fences + seen.copies; }

 private:
  std::int64_t waits0_ = 0;
};

// The reference configuration (dualnet's defaults), small passes.
Config reference(const char* loss, int ranks) {
  Config cfg;
  cfg.loss = loss;
  cfg.samples_per_pass = cfg.batch * 8;
  cfg.out = "unused";
  cfg.profile_every = 0;
  validate(cfg, ranks);
  return cfg;
}

// The host waits of one step's all-reduces: none on one rank; across ranks the MPI
// reducer copies through host memory and back (2 waits) for the batch sums of the losses
// that couple the batch and for the gradient — or, with the ranks on one host and host
// memory (reducer=auto: the gradient through shared memory, comm/shared_memory_sum.hpp),
// one copy into its window (the sum itself is a kernel). NCCL's sums are stream-ordered: none.
int allreduce_waits(const Config& cfg, const World& w) {
  if (w.size == 1) return 0;
  const bool shared = w.local_size == w.size && Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;
  return (shared ? 1 : 2) + (cfg.loss == "ref_nce" || cfg.loss == "ref_subtract" ? 2 : 0);
}

TEST(StepBudget, TrainingStepLaunchesAndWaits) {
  const World w = World::from_mpi();
  for (const char* loss : {"ref_nce", "infonce", "simp"}) {
    const Config cfg = reference(loss, w.size);
    Trainer t(cfg, w);
    t.train_step(0, 0);
    Counting count;
    const int steps = 3;
    for (int s = 1; s <= steps; ++s) t.train_step(0, s);
    const int launches = seen.total_launches() / steps;
    EXPECT_EQ(seen.total_launches() % steps, 0) << "the steps launched different kernels:\n" << seen.names();
    EXPECT_LE(launches, kStepLaunches) << loss << ": per step\n" << seen.names();
    for (const auto& [name, n] : seen.launches) EXPECT_EQ(n, steps) << loss << ": " << name << " not once per step";
    // On one rank no host wait at all; across ranks only the MPI reducer's.
    EXPECT_EQ(count.waits(), steps * allreduce_waits(cfg, w))
        << loss << ": " << seen.copies << " copies, " << seen.fences << " Kokkos fences";
    if (w.size == 1) {
      EXPECT_LE(count.waits() / steps, kStepWaits);
    }
    if (w.rank == 0)
      std::printf("[budget] %s, %d rank(s): %d launches and %.1f host waits per step\n%s", loss, w.size, launches,
                  static_cast<double>(count.waits()) / steps, seen.names().c_str());
  }
}

// A timed step (profile_every) waits between its phases; the others do not.
TEST(StepBudget, OnlyTimedStepsWait) {
  const World w = World::from_mpi();
  Config cfg = reference("infonce", w.size);
  cfg.profile_every = 2;
  Trainer t(cfg, w);
  Counting count;
  t.train_step(0, 0);  // the first of each 2 is not timed
  const std::int64_t untimed = count.waits();
  count.reset();
  t.train_step(0, 1);
  const std::int64_t timed = count.waits();
  EXPECT_EQ(untimed, allreduce_waits(cfg, w)) << seen.copies << " copies, " << seen.fences << " Kokkos fences";
  EXPECT_GE(timed, 6) << "a timed step waits after each of its phases";
  for (int p = kSample; p <= kUpdate; ++p)
    if (p != kAllreduce || w.size > 1) {
      EXPECT_GT(t.timer().seconds(p), 0.0) << phase_name(p);
    }
}

// Per chunk of anchors the evaluation launches a fixed set of kernels and never waits; the
// pass's waits are a constant (its totals' reduction and results), not a count per chunk.
TEST(StepBudget, EvaluationChunkLaunchesAndWaits) {
  const World w = World::from_mpi();
  Config cfg = reference("ref_nce", w.size);
  cfg.eval_chunk = 128;  // a chunk of 2 blocks of anchors
  const auto pass = [&](std::int64_t chunks_per_rank, Seen* s, std::int64_t* waits) {
    Config c = cfg;
    c.samples_per_pass = chunks_per_rank * c.eval_chunk * w.size;
    Trainer t(c, w);
    Counting count;
    t.evaluate(0);
    *s = seen;
    *waits = count.waits();
  };
  Seen small, large;
  std::int64_t w_small = 0, w_large = 0;
  pass(2, &small, &w_small);
  pass(6, &large, &w_large);
  const int per_chunk = (large.total_launches() - small.total_launches()) / 4;
  EXPECT_EQ((large.total_launches() - small.total_launches()) % 4, 0);
  EXPECT_LE(per_chunk, kEvalChunkLaunches) << "per chunk; a pass of 6 chunks:\n" << large.names();
  EXPECT_EQ(w_large, w_small) << "the evaluation waits per chunk";
  if (w.rank == 0)
    std::printf("[budget] evaluation, %d rank(s): %d launches per chunk of %lld anchors, %lld host waits per pass\n",
                w.size, per_chunk, static_cast<long long>(cfg.eval_chunk), static_cast<long long>(w_large));
}

}  // namespace
}  // namespace dualnet
