#include "cli.hpp"

#include <mpi.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "bench/bench.hpp"
#include "covop_command.hpp"
#include "dualnet_version.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_file.hpp"
#include "io/run_dir.hpp"
#include "io/run_lock.hpp"
#include "train/memory_estimate.hpp"
#include "train/resume.hpp"
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

void check_memory(const Config& cfg, const World& world) {
  const std::int64_t need = estimate_memory_bytes(cfg, world.size);
  const std::int64_t ranks_here = world.size / std::max(1, world.nodes);
  const std::int64_t have = available_memory_bytes();
  if (have > 0 && static_cast<double>(need) * std::max<std::int64_t>(1, ranks_here) > static_cast<double>(have)) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "memory: this configuration needs about %.1f GiB per rank (x %lld ranks on this node) but the node has "
                  "%.1f GiB available; reduce hid, depth, num_children, batch, samples_per_pass or eval_chunk",
                  need / 1073741824.0, static_cast<long long>(ranks_here), have / 1073741824.0);
    throw UsageError(buf);
  }
}

// Allocates the run's buffers. An allocation the estimate let through but the node refuses
// becomes the same one-line memory error (Kokkos reports it in several lines).
std::unique_ptr<Trainer> make_trainer(const Config& cfg, const World& world, const Checkpoint* ckpt) {
  try {
    return std::make_unique<Trainer>(cfg, world, ckpt);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::transform(what.begin(), what.end(), what.begin(), [](unsigned char c) { return std::tolower(c); });
    if (dynamic_cast<const std::bad_alloc*>(&e) == nullptr && what.find("alloc") == std::string::npos) throw;
    throw UsageError("memory: the buffers of this configuration cannot be allocated on this node; reduce hid, depth, "
                     "num_children, batch, samples_per_pass or eval_chunk");
  }
}

int train(const std::vector<std::string>& args, const World& world) {
  // The first argument without '=' names the config file, even when it is empty (an empty
  // path is refused rather than read as "no file").
  bool has_file = false;
  std::string toml_path;
  std::vector<std::string> overrides;
  for (size_t i = 0; i < args.size(); ++i) {
    if (is_help(args[i])) {
      if (world.root()) std::fputs(config_help().c_str(), stdout);
      return 0;
    }
    if (i == 0 && args[i].find('=') == std::string::npos) {
      has_file = true;
      toml_path = args[i];
    } else {
      overrides.push_back(args[i]);
    }
  }
  // Everything that can refuse runs before anything is created, deleted or written.
  Config cfg;
  std::unique_ptr<Checkpoint> ckpt;
  RunLock lock;
  on_all_ranks(world, [&] {
    if (has_file && toml_path.empty()) throw UsageError("config file '': an empty string is not a config file");
    cfg = parse_config(toml_path, overrides);
    if (!cfg.resume.empty()) {
      const std::string run_dir = resumed_run_dir(cfg.resume);
      if (world.root()) lock = RunLock::acquire(run_dir);  // before reading: no writer may change it now
      ckpt = std::make_unique<Checkpoint>(read_checkpoint(cfg.resume));
      cfg = resumed_config(cfg, toml_path, overrides, *ckpt, run_dir);
      check_resume(cfg, *ckpt);
    }
    validate(cfg, world.size);
    if (!ckpt && cfg.corr_full == "auto")  // fixed for the run's life: its metrics file has it or not
      cfg.corr_full = corr_full_enabled(cfg, TreeShape(static_cast<int>(cfg.depth), static_cast<int>(cfg.num_children),
                                                       static_cast<int>(cfg.hid)))
                          ? "true"
                          : "false";
    check_memory(cfg, world);
  });
  if (!ckpt) cfg.run_id = broadcast_string(world, world.root() ? new_run_id() : std::string());
  std::unique_ptr<Trainer> trainer;
  on_all_ranks(world, [&] { trainer = make_trainer(cfg, world, ckpt.get()); });
  if (!ckpt) lock = prepare_run_dir(cfg, world);
  install_stop_handlers();
  try {
    trainer->run();
  } catch (const std::exception&) {
    if (!ckpt && world.root()) discard_unstarted_run(cfg);
    throw;
  }
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
      if (world.root()) std::fprintf(stderr, "dualnet: error: %s\n", one_line(e.what()).c_str());
      return code;
    }
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, one_line(e.what()).c_str());
    std::fflush(stderr);
    MPI_Abort(world.comm, code);
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, one_line(e.what()).c_str());
    std::fflush(stderr);
    if (world.size > 1) MPI_Abort(world.comm, 1);
    return 1;
  }
}

}  // namespace dualnet
