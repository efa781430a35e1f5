// `dualnet bench [key=value ...]`: runs the measurements of bench/measure.hpp for a suite of
// configurations and prints (and optionally writes as JSON) throughput, time per phase,
// FLOP rates against the machine's peak, and peak memory.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "bench/measure.hpp"
#include "bench/peak_flops.hpp"
#include "commands/arguments.hpp"
#include "commands/commands.hpp"
#include "config/config.hpp"
#include "util/error.hpp"
#include "util/regular_file.hpp"
#include "util/text.hpp"

namespace dualnet {
namespace {

// The command's own keys; every other key=value is a config key applied to every configuration.
struct BenchKeys {
  std::string suite = "default";
  std::int64_t steps = 300;
  std::int64_t anchors = 16384;
  std::string json;  // "": no JSON file
};

const std::vector<KeySpecOf<BenchKeys>>& bench_keys() {
  static const std::vector<KeySpecOf<BenchKeys>> keys = {
      {"suite",
       &BenchKeys::suite,
       0,
       0,
       {"default", "reference", "depth"},
       false,
       "default: the reference configuration and its variants hid=64, depth=8,\n"
       "                                     num_children=4; reference: it alone; depth: it at depth 5 ... 10"},
      {"steps", &BenchKeys::steps, 1, 1e9, {}, false, "timed training steps per configuration"},
      {"anchors",
       &BenchKeys::anchors,
       1,
       static_cast<double>(std::int64_t(1) << 40),
       {},
       false,
       "anchors of the timed evaluation pass"},
      {"json", &BenchKeys::json, 0, 0, {}, false, "also write the results as JSON to this file"},
  };
  return keys;
}

}  // namespace

std::string bench_help() {
  return command_help<BenchKeys>(
      "usage: dualnet bench [key=value ...]\n\n"
      "Measures training and evaluation throughput, time per phase, FLOP rates and peak memory.\n",
      bench_keys(),
      "Other key=value pairs are train keys applied to every configuration (e.g. batch=256).\n"
      "Run it with mpirun -n P to measure P ranks; compare runs at different P for scaling.\n");
}

int bench_command(const std::vector<std::string>& args, const World& world) {
  BenchKeys keys;
  std::vector<std::string> overrides;
  // The JSON file is checked before the benchmark runs, not refused after it.
  on_all_ranks(world, [&] {
    overrides = read_arguments(args, false, bench_keys(), keys).config_overrides;
    if (!keys.json.empty() && world.root()) check_output_file(keys.json, "bench: json file");
  });

  std::vector<std::pair<std::string, std::vector<std::string>>> plan;
  if (keys.suite == "reference") {
    plan = {{"reference", {}}};
  } else if (keys.suite == "default") {
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
  std::vector<BenchResult> results;
  for (size_t i = 0; i < plan.size(); ++i) {
    results.push_back(measure(plan[i].first, configs[i], world, keys.steps, keys.anchors));
    if (world.root()) {
      const BenchResult& r = results.back();
      std::printf(
          "%-10s %7lld latents %9lld params  train %10.0f samples/s (%5.2f GFLOP/s/rank, %4.1f%% of peak)  "
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
    const BenchResult& r = results[i];
    j << (i ? "," : "") << "\n    {\"name\": \"" << r.name << "\", \"depth\": " << r.cfg.depth
      << ", \"hid\": " << r.cfg.hid << ", \"num_children\": " << r.cfg.num_children << ", \"batch\": " << r.cfg.batch
      << ", \"latents\": " << r.latents << ", \"params\": " << r.params << ", \"train_samples_per_s\": " << r.train_rate
      << ", \"eval_samples_per_s\": " << r.eval_rate << ", \"train_gflops_per_rank\": " << r.train_gflops
      << ", \"eval_gflops_per_rank\": " << r.eval_gflops << ", \"peak_rss_mb\": " << r.peak_rss_mb
      << ", \"phases_s\": {";
    for (int p = 0; p < kPhaseCount; ++p) {
      j << (p ? ", " : "") << "\"" << phase_name(p) << "\": ";
      if (std::isfinite(r.phases[p]))
        j << r.phases[p];
      else
        j << "null";  // no timed step (profile_every=0)
    }
    j << "}}";
  }
  j << "\n  ]\n}\n";
  std::printf("\n%s", j.str().c_str());
  if (!keys.json.empty()) {
    std::FILE* f = std::fopen(keys.json.c_str(), "w");
    if (!f) throw RuntimeError("bench: cannot write '" + echo(keys.json, 200) + "'", true);
    std::fputs(j.str().c_str(), f);
    std::fclose(f);
  }
  return 0;
}

}  // namespace dualnet
