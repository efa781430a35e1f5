#pragma once
// The run configuration: one struct, one table of keys (name, type, range, meaning),
// filled from an optional TOML file and then from key=value overrides on the command line.
// Every value is validated before any work starts; problems are UsageError (exit 2).
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace dualnet {

struct Config {
  // HLTM (SPEC §1-2)
  std::int64_t depth = 5;
  std::int64_t num_children = 2;
  double delta_lower = 0.8;
  double delta_upper = 1.0;
  std::int64_t share_levels = 1;
  std::int64_t negatives = 1;
  // network (SPEC §3)
  std::int64_t hid = 10;
  bool bias = true;
  bool normalize_output = true;
  // loss and optimiser (SPEC §4)
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
  std::int64_t progress_every = 0;
  // checkpoints and restart (io/checkpoint.hpp)
  std::string resume = "";
  std::int64_t checkpoint_every = 1;
  double checkpoint_seconds = 0.0;
  std::int64_t keep_checkpoints = 2;

  // Resolved config as TOML text (every key, one per line, in table order).
  std::string to_toml() const;
};

// One configurable key. `field` points into Config; min/max bound numbers (inclusive);
// `choices` restricts strings (empty: any). `science` keys define the experiment: a resumed
// run must agree on them.
struct KeySpec {
  const char* name;
  std::variant<std::int64_t Config::*, double Config::*, bool Config::*, std::string Config::*> field;
  double min;
  double max;
  std::vector<std::string> choices;
  bool science;
  const char* help;
};

const std::vector<KeySpec>& config_keys();

// Applies a TOML file (if path non-empty) and then the overrides ("key=value") in order,
// on top of `base` (the defaults, or a resumed run's config).
// Throws UsageError naming the key and what is allowed.
Config parse_config(const std::string& toml_path, const std::vector<std::string>& overrides,
                    const Config& base = Config());

// Reads a config back from the TOML text that to_toml() wrote (checkpoints, metrics files).
Config config_from_toml_text(const std::string& text, const std::string& origin);

// Checks ranges and cross-key consistency for a run on `world_size` ranks.
void validate(const Config& cfg, int world_size);

// Text of `dualnet train --help`: every key with its default, range and meaning.
std::string config_help();

// The science keys whose values differ between a and b ("" when they agree).
std::string science_difference(const Config& a, const Config& b);

}  // namespace dualnet
