#pragma once
// The measurements of `dualnet bench` (commands/bench.cpp) for one configuration:
// throughput of training and evaluation, time per phase, FLOP rates (bench/flop_count.hpp),
// the time of one epoch's I/O, and peak memory.
#include <cstdint>
#include <string>

#include "comm/world.hpp"
#include "config/config.hpp"
#include "train/phase_timer.hpp"

namespace dualnet {

struct BenchResult {
  std::string name;
  Config cfg;
  double train_rate = 0, eval_rate = 0, train_gflops = 0, eval_gflops = 0, io_s = 0;
  double phases[kPhaseCount] = {};
  double peak_rss_mb = 0;
  std::int64_t params = 0, latents = 0;
};

// `steps` timed training steps and one timed evaluation pass of `anchors` anchors, after a
// warm-up, on every rank of `world` (collective); the I/O on rank 0.
BenchResult measure(const std::string& name, const Config& cfg, const World& world, std::int64_t steps,
                    std::int64_t anchors);

}  // namespace dualnet
