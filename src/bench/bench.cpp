#include "bench/bench.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "bench/flop_count.hpp"
#include "bench/peak_flops.hpp"
#include "config/config.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_file.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"
#include "util/regular_file.hpp"
#include "util/text.hpp"

namespace dualnet {
namespace {

const char* kBenchHelp =
    "usage: dualnet bench [suite=default|depth] [steps=N] [anchors=N] [json=FILE] [key=value ...]\n\n"
    "Measures training and evaluation throughput, time per phase, FLOP rates and peak memory.\n"
    "  suite=default  the reference configuration, hid=64, depth=8, num_children=4\n"
    "  suite=reference  the reference configuration only\n"
    "  suite=depth    the reference configuration at depth 5 ... 10 (growth with the tree)\n"
    "  steps=N        timed training steps per configuration (default 300)\n"
    "  anchors=N      anchors of the timed evaluation pass (default 16384)\n"
    "  json=FILE      also write the results as JSON\n"
    "Other key=value pairs are train keys applied to every configuration (e.g. batch=256).\n"
    "Run it with mpirun -n P to measure P ranks; compare runs at different P for scaling.\n";

struct Result {
  std::string name;
  Config cfg;
  double train_rate = 0, eval_rate = 0, train_gflops = 0, eval_gflops = 0, io_s = 0;
  double phases[kPhaseCount] = {};
  double peak_rss_mb = 0;
  std::int64_t params = 0, latents = 0;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

Result measure(const std::string& name, const Config& cfg, const World& world, std::int64_t steps,
               std::int64_t anchors) {
  Result r;
  r.name = name;
  r.cfg = cfg;
  Trainer tr(cfg, world);
  const TreeShape& t = tr.network().tree;
  r.params = t.n_params();
  r.latents = t.n_latent;
  const std::int64_t per_pass = tr.steps_per_pass();
  for (std::int64_t s = 0; s < 5; ++s) tr.train_step(0, s % per_pass);  // warm-up
  PhaseTimer before = tr.timer();
  MPI_Barrier(world.comm);
  double t0 = now_s();
  for (std::int64_t s = 0; s < steps; ++s) tr.train_step(0, (5 + s) % per_pass);
  MPI_Barrier(world.comm);
  const double train_s = now_s() - t0;
  for (int p = 0; p < kPhaseCount; ++p) r.phases[p] = (tr.timer().seconds(p) - before.seconds(p)) / steps;
  const FlopCount f = count_flops(t, static_cast<int>(cfg.negatives) + 2);
  r.train_rate = static_cast<double>(steps * cfg.batch) / train_s;
  r.train_gflops = r.train_rate * f.train_per_item / world.size * 1e-9;  // per rank

  Config eval_cfg = cfg;
  eval_cfg.samples_per_pass = anchors;
  Trainer ev(eval_cfg, world);
  ev.evaluate(0);  // warm-up
  MPI_Barrier(world.comm);
  t0 = now_s();
  const EvalResult er = ev.evaluate(1);
  MPI_Barrier(world.comm);
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

// A whole decimal number in [1, max]; "10x" or "1e3" is refused (std::stoll read a prefix).
std::int64_t positive_integer(const std::string& key, const std::string& value, std::int64_t max) {
  const bool digits = !value.empty() && value.size() <= 18 &&
                      value.find_first_not_of("0123456789") == std::string::npos;
  const std::int64_t x = digits ? std::stoll(value) : 0;
  if (x < 1 || x > max)
    throw UsageError("bench: " + key + " must be an integer in [1, " + std::to_string(max) + "], got '" + echo(value) +
                     "'", true);
  return x;
}

}  // namespace

int bench_command(const std::vector<std::string>& args, const World& world) {
  std::string suite = "default", json;
  bool json_given = false;
  std::int64_t steps = 300, anchors = 16384;
  std::vector<std::string> overrides;
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      if (world.root()) std::fputs(kBenchHelp, stdout);
      return 0;
    }
    const auto eq = a.find('=');
    const std::string key = a.substr(0, eq), value = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "suite") suite = value;
    else if (key == "steps") steps = positive_integer(key, value, 1000000000);
    else if (key == "anchors") anchors = positive_integer(key, value, std::int64_t(1) << 40);
    else if (key == "json") json = value, json_given = true;
    else overrides.push_back(a);
  }
  if (suite != "default" && suite != "depth" && suite != "reference")
    throw UsageError("bench: suite must be default, reference or depth, got '" + echo(suite) + "'", true);
  // The JSON file is checked before the benchmark runs, not refused after it.
  on_all_ranks(world, [&] {
    if (json_given && world.root()) check_output_file(json, "bench: json file");
  });

  std::vector<std::pair<std::string, std::vector<std::string>>> plan;
  if (suite == "reference") {
    plan = {{"reference", {}}};
  } else if (suite == "default") {
    plan = {{"reference", {}}, {"hid64", {"hid=64"}}, {"depth8", {"depth=8"}}, {"k4", {"num_children=4", "depth=4"}}};
  } else {
    for (int d = 5; d <= 10; ++d) plan.push_back({"depth" + std::to_string(d), {"depth=" + std::to_string(d)}});
  }
  // Every configuration is checked before the first measurement.
  std::vector<Config> configs(plan.size());
  on_all_ranks(world, [&] {
    for (size_t i = 0; i < plan.size(); ++i) {
      std::vector<std::string> all = plan[i].second;
      all.insert(all.end(), overrides.begin(), overrides.end());
      configs[i] = parse_config("", all);
      validate(configs[i], world.size);
    }
  });
  const double peak = measure_peak_flops_per_core();
  std::vector<Result> results;
  for (size_t i = 0; i < plan.size(); ++i) {
    results.push_back(measure(plan[i].first, configs[i], world, steps, anchors));
    if (world.root()) {
      const Result& r = results.back();
      std::printf("%-10s %7lld latents %9lld params  train %10.0f samples/s (%5.2f GFLOP/s/rank, %4.1f%% of peak)  "
                  "eval %9.0f anchors/s (%5.2f GFLOP/s/rank)  peak RSS %.0f MB\n",
                  r.name.c_str(), static_cast<long long>(r.latents), static_cast<long long>(r.params), r.train_rate,
                  r.train_gflops, 100.0 * r.train_gflops * 1e9 / peak, r.eval_rate, r.eval_gflops, r.peak_rss_mb);
      std::fflush(stdout);
    }
  }
  if (!world.root()) return 0;
  std::printf("\nmachine peak: %.1f GFLOP/s per core (double, FMA loop); ranks: %d\n", peak * 1e-9, world.size);
  std::printf("time per training step (ms), per phase:\n%-10s", "config");
  for (int p = kSample; p <= kUpdate; ++p) std::printf(" %9s", phase_name(p));
  std::printf(" %9s %9s\n", "eval(s)", "io(s)");
  for (const auto& r : results) {
    std::printf("%-10s", r.name.c_str());
    for (int p = kSample; p <= kUpdate; ++p) std::printf(" %9.4f", 1e3 * r.phases[p]);
    std::printf(" %9.3f %9.4f\n", r.phases[kEval], r.phases[kIo]);
  }
  std::ostringstream j;
  j << "{\n  \"ranks\": " << world.size << ",\n  \"peak_gflops_per_core\": " << peak * 1e-9 << ",\n  \"configs\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    j << (i ? "," : "") << "\n    {\"name\": \"" << r.name << "\", \"depth\": " << r.cfg.depth << ", \"hid\": " << r.cfg.hid
      << ", \"num_children\": " << r.cfg.num_children << ", \"batch\": " << r.cfg.batch << ", \"latents\": " << r.latents
      << ", \"params\": " << r.params << ", \"train_samples_per_s\": " << r.train_rate
      << ", \"eval_samples_per_s\": " << r.eval_rate << ", \"train_gflops_per_rank\": " << r.train_gflops
      << ", \"eval_gflops_per_rank\": " << r.eval_gflops << ", \"peak_rss_mb\": " << r.peak_rss_mb << ", \"phases_s\": {";
    for (int p = 0; p < kPhaseCount; ++p) j << (p ? ", " : "") << "\"" << phase_name(p) << "\": " << r.phases[p];
    j << "}}";
  }
  j << "\n  ]\n}\n";
  std::printf("\n%s", j.str().c_str());
  if (json_given) {
    std::FILE* f = std::fopen(json.c_str(), "w");
    if (!f) throw RuntimeError("bench: cannot write '" + echo(json, 200) + "'", true);
    std::fputs(j.str().c_str(), f);
    std::fclose(f);
  }
  return 0;
}

}  // namespace dualnet
