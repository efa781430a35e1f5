#include "train/resume.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <sstream>

#include "io/metrics_file.hpp"
#include "io/run_dir.hpp"
#include "model/config_network.hpp"
#include "util/error.hpp"
#include "util/regular_file.hpp"

namespace fs = std::filesystem;

namespace dualnet {
namespace {

// The run_id line of a saved config.toml, read as text: resume needs this one value, and a
// damaged line elsewhere in the file must not decide whether the run can continue.
std::string config_file_run_id(const std::string& path) {
  const std::string text = read_regular_file(path, "resume: the run's config", kMaxConfigFileBytes);
  std::istringstream in(text);
  const std::string key = "run_id = \"";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) != 0) continue;
    const auto end = line.find('"', key.size());
    if (end == std::string::npos || end + 1 != line.size()) break;
    return line.substr(key.size(), end - key.size());
  }
  return "";
}

}  // namespace

std::string new_run_id() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  std::random_device rd;  // the kernel's entropy: two runs started in one second still differ
  const unsigned long long bits = (static_cast<unsigned long long>(rd()) << 32) ^ rd();
  char id[64];
  std::snprintf(id, sizeof id, "%s-%016llx", stamp, bits);
  return id;
}

std::string resumed_run_dir(const std::string& where) {
  std::error_code ec;
  const fs::path p(where);
  if (!fs::exists(p, ec)) throw UsageError("resume: checkpoint '" + where + "' does not exist");
  const fs::path real = fs::canonical(p, ec);
  if (ec) throw UsageError("resume: cannot resolve '" + where + "': " + ec.message());
  if (fs::is_directory(real, ec)) return real.string();
  if (real.parent_path().filename() != "checkpoints")
    throw UsageError("resume: '" + where +
                     "' is neither a run directory nor a checkpoint in a run's checkpoints/ directory");
  return real.parent_path().parent_path().string();
}

Config resumed_config(const Config& requested, const std::string& toml_path, const std::vector<std::string>& overrides,
                      const Checkpoint& ckpt, const std::string& run_dir) {
  Config cfg = parse_config(toml_path, overrides, ckpt.config);
  const std::string diff = science_difference(ckpt.config, cfg);
  if (!diff.empty())
    throw UsageError("resume: the requested config changes science keys of the checkpoint (" + diff +
                     "); start a new run for a different experiment");
  if (cfg.corr_full != ckpt.config.corr_full)
    throw UsageError("resume: corr_full is fixed when a run starts (this run: corr_full = " + ckpt.config.corr_full +
                     ")");
  if (requested.out != Config().out) {
    std::error_code ec;
    if (!fs::equivalent(fs::path(requested.out), fs::path(run_dir), ec))
      throw UsageError("resume: the run continues in '" + run_dir + "'; out must not name another directory");
  }
  cfg.out = run_dir;
  cfg.resume = requested.resume;
  cfg.overwrite = false;
  cfg.run_id = ckpt.config.run_id;  // a template's run_id never renames a run
  return cfg;
}

void check_resume(const Config& cfg, const Checkpoint& ckpt) {
  const std::string id = ckpt.config.run_id;
  if (id.empty()) throw UsageError("resume: the checkpoint has no run identity (written by an older dualnet)");
  const std::string config_path = (fs::path(cfg.out) / "config.toml").string();
  const std::string config_id = config_file_run_id(config_path);
  if (config_id != id)
    throw UsageError("resume: '" + config_path + "' belongs to run '" + config_id + "', the checkpoint to run '" + id +
                     "'; files of two runs are mixed in '" + cfg.out + "'");
  const MetricsFileInfo metrics = inspect_metrics_file(metrics_path(cfg), tree_shape(cfg));
  if (metrics.run_id != id)
    throw UsageError("resume: '" + metrics_path(cfg) + "' belongs to run '" + metrics.run_id +
                     "', the checkpoint to run '" + id + "'; files of two runs are mixed in '" + cfg.out + "'");
  if (metrics.rows < ckpt.epoch + 1)
    throw UsageError("resume: '" + metrics_path(cfg) + "' has " + std::to_string(metrics.rows) +
                     " rows but the checkpoint needs " + std::to_string(ckpt.epoch + 1));
  const std::int64_t done = std::max(ckpt.epoch, metrics.rows - 1);
  if (cfg.epochs < done)
    throw UsageError("resume: epochs=" + std::to_string(cfg.epochs) + " is fewer than the " + std::to_string(done) +
                     " epochs this run has finished; resuming would delete results (give epochs >= " +
                     std::to_string(done) + ", or start a new run)");
}

}  // namespace dualnet
