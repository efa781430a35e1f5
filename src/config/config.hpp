#pragma once
// The run configuration: one struct, one table of keys (name, type, range, meaning),
// filled from an optional TOML file and then from key=value overrides on the command line.
// Every value is validated before any work starts; problems are UsageError (exit 2).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config/key_spec.hpp"

namespace dualnet {

struct Config {
  // The run's identity, assigned by dualnet when a run is created ("" until then). Not a
  // key users set: it is kept out of config_keys(), refused on the command line, read from
  // a config file (a saved config.toml used as a template: the caller decides) and ignored
  // by science_difference().
  std::string run_id;
  // HLTM and views (docs/science.md#hltm, #views)
  std::int64_t depth = 5;
  std::int64_t num_children = 2;
  double delta_lower = 0.8;
  double delta_upper = 1.0;
  std::int64_t share_levels = 1;
  std::int64_t negatives = 1;
  // network (docs/science.md#network)
  std::int64_t hid = 10;
  bool bias = true;
  bool normalize_output = true;
  // loss, optimiser, schedule (docs/science.md#losses, #optimiser, #schedule)
  std::string loss = "ref_nce";
  double temp = 0.1;
  double margin = 0.0;
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
  std::int64_t batch = 128;
  std::int64_t micro_batch = 4;
  std::int64_t samples_per_pass = 64000;
  std::int64_t epochs = 50;
  std::int64_t seed = 1;
  // measurement and output
  std::string corr_full = "auto";
  std::int64_t eval_chunk = 512;
  std::string out = "dualnet-run";
  bool overwrite = false;
  std::string reducer = "auto";
  std::string balance = "auto";
  std::int64_t progress_every = 0;
  std::int64_t profile_every = 10;
  // checkpoints and restart (io/checkpoint.hpp)
  std::string resume = "";
  std::int64_t checkpoint_every = 1;
  double checkpoint_seconds = 0.0;
  std::int64_t keep_checkpoints = 2;

  // Resolved config as TOML text (`run_id = "..."` first when set, then every key, one per
  // line, in table order). config_from_toml_text(to_toml()) gives back this config exactly.
  std::string to_toml() const;
  // The text saved with a run (config.toml, checkpoints, metrics): to_toml() with
  // overwrite = false and resume = "", after a comment line, so that re-running a saved
  // config can never overwrite or resume anything by accident.
  std::string to_stored_toml() const;
};

// One configurable key (config/key_spec.hpp). `science` keys define the experiment: a
// resumed run must agree on them.
using KeySpec = KeySpecOf<Config>;

const std::vector<KeySpec>& config_keys();

// Applies a TOML file (if path non-empty) and then the overrides ("key=value") in order,
// on top of `base` (the defaults, or a resumed run's config).
// Throws UsageError naming the key and what is allowed.
Config parse_config(const std::string& toml_path, const std::vector<std::string>& overrides,
                    const Config& base = Config());

// The same for a config file the user named: `toml_path` is always read, so an empty path
// is refused like a missing file, a directory or a FIFO (read_regular_file). A run_id in
// the file is kept in the result's run_id (the file may be a run's saved config.toml).
Config parse_config_file(const std::string& toml_path, const std::vector<std::string>& overrides,
                         const Config& base = Config());

// corr_full=auto writes /metrics/corr_full while the whole run's corr_full, (epochs + 1)
// rows of doubles, is at most this many bytes (io/metrics_file.hpp, corr_full_enabled).
constexpr std::int64_t kCorrFullAutoBytes = std::int64_t(64) << 20;

// Largest config file read (bytes).
constexpr std::size_t kMaxConfigFileBytes = 1 << 20;

// Reads a config back from the TOML text that to_toml() wrote (checkpoints, metrics files).
Config config_from_toml_text(const std::string& text, const std::string& origin);

// Checks ranges and cross-key consistency for a run on `world_size` ranks.
void validate(const Config& cfg, int world_size);

// Text of `dualnet train --help`: every key with its default, range and meaning.
std::string config_help();

// The science keys whose values differ between a and b ("" when they agree).
std::string science_difference(const Config& a, const Config& b);

}  // namespace dualnet
