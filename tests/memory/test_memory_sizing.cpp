// The memory estimate's sizing functions against what the code really allocates: every
// Kokkos allocation is counted through the Kokkos Tools allocation callbacks, so a buffer
// added to SampleBatch, Activations, Evaluator or Trainer without its sizing function (and so
// without the estimate) fails here. tests/memory/rss_vs_estimate.py checks the whole
// estimate against the peak RSS of real runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "hltm/hltm.hpp"
#include "io/metrics_file.hpp"
#include "model/network.hpp"
#include "stats/evaluator.hpp"
#include "train/memory_estimate.hpp"
#include "train/trainer.hpp"

namespace dualnet {
namespace {

// Bytes of live Kokkos allocations, and their peak since reset().
struct AllocationCounter {
  static inline double live = 0.0, peak = 0.0;
  static void on_alloc(Kokkos::Profiling::SpaceHandle, const char*, const void*, std::uint64_t size) {
    live += static_cast<double>(size);
    peak = std::max(peak, live);
  }
  static void on_free(Kokkos::Profiling::SpaceHandle, const char*, const void*, std::uint64_t size) {
    live -= static_cast<double>(size);
  }
  AllocationCounter() {
    live = peak = 0.0;
    Kokkos::Tools::Experimental::set_allocate_data_callback(&on_alloc);
    Kokkos::Tools::Experimental::set_deallocate_data_callback(&on_free);
  }
  ~AllocationCounter() {
    Kokkos::Tools::Experimental::set_allocate_data_callback(nullptr);
    Kokkos::Tools::Experimental::set_deallocate_data_callback(nullptr);
  }
  // Live bytes now count as zero; the peak restarts from here.
  static void reset() {
    live = 0.0;
    peak = 0.0;
  }
};

struct Shape {
  int depth, k, hid;
};
const std::vector<Shape> kShapes = {{1, 2, 1}, {2, 2, 1}, {3, 3, 5}, {5, 2, 10}, {4, 4, 13}, {2, 16, 3}, {3, 2, 64}};

TEST(MemorySizing, SampleBatchAndActivationsMatchTheirAllocations) {
  for (const Shape& s : kShapes) {
    const TreeShape t(s.depth, s.k, s.hid);
    for (std::int64_t rows : {1, 7, 384}) {
      SCOPED_TRACE("depth " + std::to_string(s.depth) + " k " + std::to_string(s.k) + " hid " + std::to_string(s.hid) +
                   " rows " + std::to_string(rows));
      AllocationCounter count;
      {
        SampleBatch b;
        b.allocate(t, rows);
        EXPECT_EQ(AllocationCounter::live, SampleBatch::bytes(t, rows));
      }
      AllocationCounter::reset();
      {
        Activations a;
        a.allocate(t, rows);
        EXPECT_EQ(AllocationCounter::live, Activations::bytes(t, rows));
      }
    }
  }
}

TEST(MemorySizing, EvaluatorMatchesItsAllocations) {
  for (const Shape& s : kShapes) {
    NetworkShape net;
    net.tree = TreeShape(s.depth, s.k, s.hid);
    for (std::int64_t max_chunk : {1, 64, 100, 512, 1 << 20}) {
      for (bool all_pairs : {false, true}) {
        SCOPED_TRACE("depth " + std::to_string(s.depth) + " k " + std::to_string(s.k) + " hid " +
                     std::to_string(s.hid) + " eval_chunk " + std::to_string(max_chunk) +
                     (all_pairs ? " all pairs" : ""));
        AllocationCounter count;
        Evaluator ev(net, max_chunk, all_pairs);
        EXPECT_EQ(ev.chunk(), Evaluator::chunk_for(net, max_chunk));
        EXPECT_EQ(ev.chunk() % kEvalBlock, 0);
        EXPECT_EQ(AllocationCounter::live, Evaluator::workspace_bytes(net, ev.chunk(), all_pairs));
        EXPECT_EQ(static_cast<std::int64_t>(ev.totals().extent(0)), Evaluator::totals_length(net, all_pairs));
      }
    }
  }
}

World self_world() {
  World w;
  w.comm = MPI_COMM_SELF;
  return w;
}

// The Trainer's Views are exactly the estimate's persistent part, and an evaluation pass and
// a training step stay within the estimate's transient part.
TEST(MemorySizing, TrainerBuffersAreThePersistentEstimate) {
  const std::vector<std::vector<std::string>> configs = {
      {},
      {"depth=3", "num_children=3", "hid=5", "negatives=3", "batch=12", "micro_batch=3", "eval_chunk=100",
       "samples_per_pass=96"},
      {"depth=4", "num_children=2", "hid=64", "batch=8", "micro_batch=2", "samples_per_pass=64", "corr_full=true"},
      {"depth=2", "num_children=16", "hid=2", "batch=4", "micro_batch=1", "samples_per_pass=200", "corr_full=false",
       "loss=simp"},
  };
  for (const auto& keys : configs) {
    Config cfg = parse_config("", keys);
    if (keys.empty()) cfg.samples_per_pass = 1280;
    validate(cfg, 1);
    std::string name;
    for (const auto& k : keys) name += k + " ";
    SCOPED_TRACE("config: " + name);
    const MemoryEstimate m = estimate_memory(cfg, 1);
    AllocationCounter count;
    Trainer trainer(cfg, self_world());
    EXPECT_EQ(AllocationCounter::live, m.persistent);
    // Only Views are counted here; the host vectors are in the same parts of the estimate.
    AllocationCounter::reset();
    const EvalResult r = trainer.evaluate(0);
    EXPECT_GT(r.samples, 0);
    const bool all_pairs = corr_full_enabled(cfg, trainer.network().tree);
    EXPECT_LE(AllocationCounter::peak, Evaluator::finish_bytes(trainer.network(), all_pairs));
    EXPECT_LE(AllocationCounter::peak, m.transient);
    AllocationCounter::reset();
    trainer.train_step(0, 0);
    EXPECT_LE(AllocationCounter::peak, m.transient);
  }
}

// The cases of the issue: the evaluation chunk rounded up to one block of 64 anchors of 2^24
// leaves (8.6 GB), and a pass of 2^43 samples whose per-step losses alone are 2^39 bytes.
TEST(MemoryEstimate, CoversTheBuffersThatWereMissing) {
  Config big = parse_config(
      "", {"depth=6", "num_children=16", "hid=1", "batch=2", "micro_batch=1", "samples_per_pass=2", "epochs=1"});
  validate(big, 1);
  const TreeShape t(6, 16, 1);
  EXPECT_GE(static_cast<double>(estimate_memory_bytes(big, 1)), 8.6e9);
  EXPECT_GE(static_cast<double>(estimate_memory_bytes(big, 1)),
            SampleBatch::bytes(t, 64) + 2 * SampleBatch::bytes(t, 6));

  Config steps = parse_config("", {"samples_per_pass=8796093022208"});
  validate(steps, 1);
  EXPECT_GE(static_cast<double>(estimate_memory_bytes(steps, 1)), 8.0 * 8796093022208.0 / 128);
}

TEST(MemoryEstimate, SaturatesInsteadOfOverflowing) {
  Config c;  // not validated: the estimate must not overflow whatever it is given
  c.depth = 20;
  c.num_children = 16;
  c.hid = 4096;
  c.batch = 1 << 24;
  EXPECT_EQ(estimate_memory_bytes(c, 1), std::int64_t(9e18));
  Config wide = parse_config(
      "", {"depth=5", "num_children=2", "hid=4096", "batch=16777216", "samples_per_pass=8999999999999999999"});
  EXPECT_GT(estimate_memory_bytes(wide, 1), std::int64_t(1) << 40);
  EXPECT_LE(estimate_memory_bytes(wide, 1), std::int64_t(9e18));
}

}  // namespace
}  // namespace dualnet
