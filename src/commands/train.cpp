// `dualnet train [CONFIG.toml] [key=value ...]`: checks everything that can refuse a run,
// then prepares the run directory and trains (train/trainer.hpp); `resume=RUN` continues a
// run from its latest checkpoint.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "commands/arguments.hpp"
#include "commands/commands.hpp"
#include "config/config.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_file.hpp"
#include "io/run_dir.hpp"
#include "io/run_lock.hpp"
#include "model/config_network.hpp"
#include "train/memory_estimate.hpp"
#include "train/resume.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

void check_memory(const Config& cfg, const World& world) {
  const std::int64_t need = estimate_memory_bytes(cfg, world.size);
  const std::int64_t ranks_here = world.size / std::max(1, world.nodes);
  const std::int64_t have = available_memory_bytes();
  if (have > 0 && static_cast<double>(need) * std::max<std::int64_t>(1, ranks_here) > static_cast<double>(have)) {
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
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
    throw UsageError(
        "memory: the buffers of this configuration cannot be allocated on this node; reduce hid, depth, "
        "num_children, batch, samples_per_pass or eval_chunk");
  }
}

}  // namespace

std::string train_help() { return config_help(); }

int train_command(const std::vector<std::string>& args, const World& world) {
  // Everything that can refuse runs before anything is created, deleted or written.
  Config cfg;
  std::unique_ptr<Checkpoint> ckpt;
  RunLock lock;
  on_all_ranks(world, [&] {
    // The first argument without '=' names the config file, even when it is empty (an empty
    // path is refused rather than read as "no file").
    const Arguments a = split_arguments(args, true);
    if (a.has_path && a.path.empty()) throw UsageError("config file '': an empty string is not a config file");
    cfg = parse_config(a.path, a.config_overrides);
    if (!cfg.resume.empty()) {
      const std::string run_dir = resumed_run_dir(cfg.resume);
      if (world.root()) lock = RunLock::acquire(run_dir);  // before reading: no writer may change it now
      ckpt = std::make_unique<Checkpoint>(read_checkpoint(cfg.resume));
      cfg = resumed_config(cfg, a.path, a.config_overrides, *ckpt, run_dir);
      check_resume(cfg, *ckpt);
    }
    validate(cfg, world.size);
    if (!ckpt && cfg.corr_full == "auto")  // fixed for the run's life: its metrics file has it or not
      cfg.corr_full = corr_full_enabled(cfg, tree_shape(cfg)) ? "true" : "false";
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

}  // namespace dualnet
