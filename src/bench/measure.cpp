#include "bench/measure.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench/flop_count.hpp"
#include "comm/mpi_check.hpp"
#include "config/config.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_file.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"
#include "util/wall_clock.hpp"

namespace dualnet {
namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

}  // namespace

BenchResult measure(const std::string& name, const Config& cfg, const World& world, std::int64_t steps,
                    std::int64_t anchors) {
  BenchResult r;
  r.name = name;
  r.cfg = cfg;
  Trainer tr(cfg, world);
  const TreeShape& t = tr.network().tree;
  r.params = t.n_params();
  r.latents = t.n_latent;
  const std::int64_t per_pass = tr.steps_per_pass();
  for (std::int64_t s = 0; s < 5; ++s) tr.train_step(0, s % per_pass);  // warm-up
  PhaseTimer before = tr.timer();
  const std::int64_t timed_before = tr.timed_steps();
  DUALNET_MPI_CHECK(MPI_Barrier(world.comm));
  double t0 = now_s();
  for (std::int64_t s = 0; s < steps; ++s) tr.train_step(0, (5 + s) % per_pass);
  DUALNET_MPI_CHECK(MPI_Barrier(world.comm));
  const double train_s = now_s() - t0;
  // Per timed step (every profile_every-th: their phases wait for the device); NaN if none.
  const double timed = static_cast<double>(tr.timed_steps() - timed_before);
  for (int p = 0; p < kPhaseCount; ++p) r.phases[p] = (tr.timer().seconds(p) - before.seconds(p)) / timed;
  const FlopCount f = count_flops(t, static_cast<int>(cfg.negatives) + 2);
  r.train_rate = static_cast<double>(steps * cfg.batch) / train_s;
  r.train_gflops = r.train_rate * f.train_per_item / world.size * 1e-9;  // per rank

  Config eval_cfg = cfg;
  eval_cfg.samples_per_pass = anchors;
  Trainer ev(eval_cfg, world);
  ev.evaluate(0);  // warm-up
  DUALNET_MPI_CHECK(MPI_Barrier(world.comm));
  t0 = now_s();
  const EvalResult er = ev.evaluate(1);
  DUALNET_MPI_CHECK(MPI_Barrier(world.comm));
  const double eval_s = now_s() - t0;
  r.phases[kEval] = eval_s;
  r.eval_rate = static_cast<double>(anchors) / eval_s;
  r.eval_gflops = r.eval_rate * f.eval_per_anchor / world.size * 1e-9;

  // I/O: one metrics row and one checkpoint, as a run writes them each epoch (rank 0).
  if (world.root()) {
    const auto dir = std::filesystem::temp_directory_path() / ("dualnet-bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    Config io_cfg = cfg;
    io_cfg.out = dir.string();
    t0 = now_s();
    std::vector<double> pol(static_cast<size_t>(t.n_latent + t.n_leaf), 0.5), w(static_cast<size_t>(t.n_latent), 1.0);
    create_metrics_file((dir / "metrics.h5").string(), io_cfg, t, pol, pol, world.size);
    MetricsRow row;
    row.eval = &er;
    row.weight_norm = w;
    row.weight_change = w;
    append_metrics_row((dir / "metrics.h5").string(), row);
    Checkpoint c;
    c.config = io_cfg;
    c.params.assign(static_cast<size_t>(t.n_params()), 0.0);
    c.velocity = c.params;
    c.step_losses.assign(static_cast<size_t>(per_pass), 0.0);
    c.polarity = pol;
    write_checkpoint(dir.string(), c, 1);
    r.io_s = now_s() - t0;
    std::filesystem::remove_all(dir);
  }
  r.phases[kIo] = r.io_s;
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

}  // namespace dualnet
