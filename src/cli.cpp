#include "cli.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "bench/bench.hpp"
#include "covop_command.hpp"
#include "dualnet_version.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_file.hpp"
#include "io/run_dir.hpp"
#include "train/memory_estimate.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

const char* kUsage =
    "usage: dualnet <command> [arguments]\n\n"
    "commands:\n"
    "  train [CONFIG.toml] [key=value ...]   train and measure; 'dualnet train --help' lists the keys\n"
    "  covop [RUN|CHECKPOINT|CONFIG.toml] [key=value ...]\n"
    "                                        check the covariance-operator theorem on a network's\n"
    "                                        weights; 'dualnet covop --help' lists its keys\n"
    "  bench [suite=default|depth] [steps=N] [anchors=N] [json=FILE]\n"
    "                                        throughput, time per phase, FLOP rates, memory\n"
    "  --version                             print the version\n\n"
    "Run on P ranks with: mpirun -n P dualnet train ...; GPUs: add --kokkos-device-id=<local rank>.\n";

bool is_help(const std::string& a) { return a == "--help" || a == "-h" || a == "help"; }

// The config of a resumed run: the checkpoint's, with the keys the user gave on top; the
// science keys must not change.
Config resumed_config(const Config& requested, const std::string& toml_path, const std::vector<std::string>& overrides,
                      const Checkpoint& ckpt) {
  Config cfg = parse_config(toml_path, overrides, ckpt.config);
  const std::string diff = science_difference(ckpt.config, cfg);
  if (!diff.empty())
    throw UsageError("resume: the requested config changes science keys of the checkpoint (" + diff +
                     "); start a new run for a different experiment");
  const std::string run_dir = run_dir_of(requested.resume);
  namespace fs = std::filesystem;
  if (requested.out != Config().out && !fs::equivalent(fs::path(requested.out), fs::path(run_dir)))
    throw UsageError("resume: the run continues in '" + run_dir + "'; out must not name another directory");
  cfg.out = run_dir;
  cfg.resume = requested.resume;
  cfg.overwrite = false;
  return cfg;
}

void check_memory(const Config& cfg, const World& world) {
  const std::int64_t need = estimate_memory_bytes(cfg, world.size);
  const std::int64_t ranks_here = world.size / std::max(1, world.nodes);
  const std::int64_t have = available_memory_bytes();
  if (have > 0 && static_cast<double>(need) * std::max<std::int64_t>(1, ranks_here) > static_cast<double>(have)) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "memory: this configuration needs about %.1f GiB per rank (x %lld ranks on this node) but the node has "
                  "%.1f GiB available; reduce hid, depth, num_children, batch or eval_chunk",
                  need / 1073741824.0, static_cast<long long>(ranks_here), have / 1073741824.0);
    throw UsageError(buf);
  }
}

int train(const std::vector<std::string>& args, const World& world) {
  std::string toml_path;
  std::vector<std::string> overrides;
  for (size_t i = 0; i < args.size(); ++i) {
    if (is_help(args[i])) {
      if (world.root()) std::fputs(config_help().c_str(), stdout);
      return 0;
    }
    if (args[i].find('=') == std::string::npos && i == 0) toml_path = args[i];
    else overrides.push_back(args[i]);
  }
  Config cfg;
  std::unique_ptr<Checkpoint> ckpt;
  on_all_ranks(world, [&] {
    cfg = parse_config(toml_path, overrides);
    if (!cfg.resume.empty()) {
      ckpt = std::make_unique<Checkpoint>(read_checkpoint(cfg.resume));
      cfg = resumed_config(cfg, toml_path, overrides, *ckpt);
      check_metrics_file(metrics_path(cfg), ckpt->epoch + 1,
                         TreeShape(static_cast<int>(cfg.depth), static_cast<int>(cfg.num_children),
                                   static_cast<int>(cfg.hid)));
    }
    validate(cfg, world.size);
    check_memory(cfg, world);
  });
  if (!ckpt) prepare_run_dir(cfg, world);
  std::unique_ptr<Trainer> trainer;
  on_all_ranks(world, [&] { trainer = std::make_unique<Trainer>(cfg, world, ckpt.get()); });
  install_stop_handlers();
  trainer->run();
  return 0;
}

}  // namespace

int run_cli(int argc, char* argv[], const World& world) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || is_help(args[0])) {
      if (world.root()) std::fputs(kUsage, args.empty() ? stderr : stdout);
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
      if (world.root()) std::printf("dualnet %s (%s)\n", DUALNET_VERSION, DUALNET_GIT_COMMIT);
      return 0;
    }
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "train") return train(rest, world);
    if (args[0] == "covop") return covop_command(rest, world);
    if (args[0] == "bench") return bench_command(rest, world);
    if (world.root()) std::fprintf(stderr, "dualnet: error: unknown command '%s' (try 'dualnet --help')\n", args[0].c_str());
    return 2;
  } catch (const Error& e) {
    const int code = dynamic_cast<const UsageError*>(&e) ? 2 : 1;
    if (e.all_ranks || world.size == 1) {
      if (world.root()) std::fprintf(stderr, "dualnet: error: %s\n", e.what());
      return code;
    }
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, e.what());
    std::fflush(stderr);
    MPI_Abort(world.comm, code);
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, e.what());
    std::fflush(stderr);
    if (world.size > 1) MPI_Abort(world.comm, 1);
    return 1;
  }
}

}  // namespace dualnet
