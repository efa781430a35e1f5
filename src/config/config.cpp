#include "config/config.hpp"

#include <cmath>
#include <map>
#include <sstream>

#include "config/key_table.hpp"
#include "loss/loss_names.hpp"
#include "train/work_split.hpp"
#include "util/error.hpp"
#include "util/regular_file.hpp"
#include "util/text.hpp"

namespace dualnet {

const std::vector<KeySpec>& config_keys() {
  static const std::string corr_full_help =
      "write /metrics/corr_full (every latent x every neuron); auto: while the whole run's corr_full, (epochs + 1) "
      "rows, is at most " +
      std::to_string(kCorrFullAutoBytes >> 20) + " MiB";
  static const std::vector<KeySpec> keys = {
      {"depth", &Config::depth, 1, 20, {}, true, "levels of latent variables in the tree (root = level 0)"},
      {"num_children", &Config::num_children, 2, 16, {}, true, "children per node (k of the k-ary tree)"},
      {"delta_lower", &Config::delta_lower, 0, 1, {}, true, "lower bound of |polarity| of each edge"},
      {"delta_upper", &Config::delta_upper, 0, 1, {}, true, "upper bound of |polarity| of each edge"},
      {"share_levels",
       &Config::share_levels,
       0,
       20,
       {},
       true,
       "latent levels above this one are shared by anchor and positive (1: the root only); at most depth"},
      {"negatives", &Config::negatives, 1, 64, {}, true, "negatives per anchor (H); triplet needs 1"},
      {"hid", &Config::hid, 1, 4096, {}, true, "neurons per latent node"},
      {"bias", &Config::bias, 0, 0, {}, true, "give every neuron a bias (false: bias-free network)"},
      {"normalize_output",
       &Config::normalize_output,
       0,
       0,
       {},
       true,
       "output f = h_root/(|h_root|+1e-4) (false: f = h_root)"},
      {"loss", &Config::loss, 0, 0, loss_name_list(), true,
       "contrastive loss: simp, triplet, infonce, or the reference script's batch-coupled ref_nce and ref_subtract; "
       "defined in docs/science.md#losses"},
      {"temp", &Config::temp, 1e-6, 1e6, {}, true, "temperature tau of triplet, infonce, ref_nce"},
      {"margin", &Config::margin, 0, kNoMax, {}, true, "margin r of the triplet loss"},
      {"lr", &Config::lr, 0, kNoMax, {}, true, "SGD learning rate"},
      {"momentum", &Config::momentum, 0, 0.999999, {}, true, "SGD momentum (PyTorch convention)"},
      {"weight_decay", &Config::weight_decay, 0, kNoMax, {}, true, "SGD weight decay (L2 on weights and biases)"},
      {"batch", &Config::batch, 1, 1 << 24, {}, true, "global batch (anchors per SGD step, over all ranks)"},
      {"micro_batch",
       &Config::micro_batch,
       1,
       1 << 20,
       {},
       true,
       "anchors per exactly-reduced gradient chunk; must divide batch/ranks (rank-count invariance)"},
      {"samples_per_pass",
       &Config::samples_per_pass,
       1,
       kIntMax,
       {},
       true,
       "anchors per evaluation pass and per training pass (N); a multiple of batch"},
      {"epochs", &Config::epochs, 0, 1e9, {}, false, "training epochs (each: evaluation pass, then training pass)"},
      {"seed", &Config::seed, 0, kIntMax, {}, true, "seed of polarities, weights and the sample stream"},
      {"corr_full", &Config::corr_full, 0, 0, {"auto", "true", "false"}, false, corr_full_help.c_str()},
      {"eval_chunk",
       &Config::eval_chunk,
       1,
       1 << 24,
       {},
       false,
       "at most this many anchors per evaluation kernel launch (also capped so that a launch's Jacobians stay near 4 "
       "MiB)"},
      {"out", &Config::out, 0, 0, {}, false, "run directory (metrics.h5, config.toml, timing.json)"},
      {"overwrite", &Config::overwrite, 0, 0, {}, false, "replace an existing run directory"},
      {"reducer",
       &Config::reducer,
       0,
       0,
       {"auto", "mpi", "shm", "nccl"},
       false,
       "gradient all-reduce: auto = nccl on a CUDA build with 2 or more ranks, shm when the ranks share one "
       "host, else mpi (none on one rank); shm: MPI for every sum but the gradient's, which goes through a "
       "shared-memory window"},
      {"balance",
       &Config::balance,
       0,
       0,
       {},
       false,
       "how each step's micro-batches and each evaluation pass's blocks are shared among ranks: auto = steps even, "
       "the evaluation's blocks after every pass in inverse proportion to each rank's measured time per block "
       "(kernels on the host, 2 or more ranks); even; or one positive share per rank, comma-separated (a fixed "
       "split of both, a rank given at most 1.5 times its even share of a step); every split gives the same bits"},
      {"progress_every",
       &Config::progress_every,
       0,
       kIntMax,
       {},
       false,
       "also print a progress line every this many training steps (0: once per epoch)"},
      {"profile_every",
       &Config::profile_every,
       0,
       kIntMax,
       {},
       false,
       "time the phases of every this many-th training step for timing.json (0: never); each timed step waits for "
       "the device between its phases"},
      {"resume",
       &Config::resume,
       0,
       0,
       {},
       false,
       "continue the run in this run directory (or from this checkpoint file); science keys must match"},
      {"checkpoint_every",
       &Config::checkpoint_every,
       1,
       kIntMax,
       {},
       false,
       "write a checkpoint every this many epochs (and always after the last)"},
      {"checkpoint_seconds",
       &Config::checkpoint_seconds,
       0,
       kNoMax,
       {},
       false,
       "also write one when this many seconds passed since the last (0: off)"},
      {"keep_checkpoints", &Config::keep_checkpoints, 1, 1000000, {}, false, "checkpoints kept in <out>/checkpoints"},
  };
  return keys;
}

namespace {

constexpr std::size_t kMaxRunIdBytes = 256;

const KeySpec& find_key(const std::string& name, const std::string& origin) {
  for (const auto& k : config_keys())
    if (name == k.name) return k;
  throw UsageError(origin + ": unknown key '" + echo(name) + "' (see 'dualnet train --help' for the keys)");
}

void set_run_id(Config& cfg, const toml::value& v, const std::string& origin) {
  const std::string allowed = "run_id must be a string of at most " + std::to_string(kMaxRunIdBytes) +
                              " bytes of UTF-8 without control characters";
  if (!v.is_string()) {
    const std::string type = type_name(v);
    throw UsageError(origin + ": " + allowed + ", got " + (type.empty() ? "'" + echo(token_of(v)) + "'" : type));
  }
  const std::string& s = v.as_string().str;
  std::string problem = string_value_problem(s);
  if (problem.empty() && s.size() > kMaxRunIdBytes) problem = std::to_string(s.size()) + " bytes";
  if (!problem.empty()) throw UsageError(origin + ": " + allowed + ", got '" + echo(s) + "' (" + problem + ")");
  cfg.run_id = s;
}

std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  // toml11 prefixes its messages with "[error] ".
  const std::string tag = "[error] ";
  if (line.rfind(tag, 0) == 0) line = line.substr(tag.size());
  return echo(line, 200);
}

void apply_table(Config& cfg, const toml::value& root, const std::string& origin) {
  if (!root.is_table()) throw UsageError(origin + ": expected a TOML table of keys");
  // In name order: the same file always gives the same first error.
  std::map<std::string, const toml::value*> sorted;
  for (const auto& [name, value] : root.as_table()) sorted[name] = &value;
  for (const auto& [name, value] : sorted) {
    if (name == "run_id") {
      set_run_id(cfg, *value, origin);
      continue;
    }
    set_key(cfg, find_key(name, origin), *value, "", origin);
  }
}

toml::value parse_toml_text(const std::string& text, const std::string& origin) {
  // Binary data is refused before toml11 sees it (its messages would echo the bytes).
  const std::size_t nul = text.find('\0');
  if (nul != std::string::npos)
    throw UsageError(origin + " is not a TOML text file: a NUL byte at byte " + std::to_string(nul + 1));
  const std::size_t bad = invalid_utf8_at(text);
  if (bad != std::string::npos)
    throw UsageError(origin + " is not a TOML text file: invalid UTF-8 at byte " + std::to_string(bad + 1));
  if (nesting_depth(text) > kMaxNesting)
    throw UsageError(origin + ": malformed TOML: arrays or tables nested more than " + std::to_string(kMaxNesting) +
                     " deep");
  std::istringstream in(text);
  try {
    return toml::parse(in, origin);
  } catch (const toml::syntax_error& e) {
    throw UsageError(origin + ": malformed TOML at line " + std::to_string(e.location().line()) + ": " +
                     first_line(e.what()));
  } catch (const std::exception& e) {
    throw UsageError(origin + ": malformed TOML: " + first_line(e.what()));
  }
}

void apply_overrides(Config& cfg, const std::vector<std::string>& overrides) {
  for (const auto& ov : overrides) {
    const auto eq = ov.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("argument '" + echo(ov) + "' is not of the form key=value");
    const std::string name = ov.substr(0, eq);
    const std::string raw = ov.substr(eq + 1);
    if (name == "run_id")
      throw UsageError(
          "command line: run_id is assigned by dualnet; it cannot be set (start a new run for a new "
          "run_id, or resume=RUN to continue one)");
    const KeySpec& k = find_key(name, "command line");
    set_key(cfg, k, command_line_value(raw), raw, "command line");
  }
}

}  // namespace

std::string Config::to_toml() const {
  std::string s;
  if (!run_id.empty()) s += "run_id = " + toml_quote(run_id) + "\n";
  for (const auto& k : config_keys()) s += std::string(k.name) + " = " + value_text(*this, k) + "\n";
  return s;
}

std::string Config::to_stored_toml() const {
  Config stored = *this;
  stored.overwrite = false;
  stored.resume = "";
  return "# dualnet run config; reuse it as a template with: dualnet train THIS_FILE out=NEW_DIR "
         "(run_id is then assigned anew; overwrite and resume are off)\n" +
         stored.to_toml();
}

Config parse_config(const std::string& toml_path, const std::vector<std::string>& overrides, const Config& base) {
  if (!toml_path.empty()) return parse_config_file(toml_path, overrides, base);
  Config cfg = base;
  apply_overrides(cfg, overrides);
  return cfg;
}

Config parse_config_file(const std::string& toml_path, const std::vector<std::string>& overrides, const Config& base) {
  Config cfg = base;
  const std::string text = read_regular_file(toml_path, "config file", kMaxConfigFileBytes);
  const std::string origin = "config file '" + echo(toml_path, 200) + "'";
  apply_table(cfg, parse_toml_text(text, origin), origin);
  apply_overrides(cfg, overrides);
  return cfg;
}

Config config_from_toml_text(const std::string& text, const std::string& origin) {
  Config cfg;
  apply_table(cfg, parse_toml_text(text, origin), origin);
  return cfg;
}

void validate(const Config& c, int world_size) {
  const auto fail = [](const std::string& m) { throw UsageError(m); };
  // Paths and the run id: a Config can also be built in code, so the setters' checks repeat.
  for (const auto& k : config_keys()) {
    if (!is_free_string(k)) continue;
    const std::string& s = c.*std::get<std::string Config::*>(k.field);
    const std::string problem = string_value_problem(s);
    if (!problem.empty() || s.size() > kMaxStringBytes || (s.empty() && std::string(k.name) != "resume"))
      fail("key '" + std::string(k.name) + "' must be " + allowed_text(k) + ", got '" + echo(s) + "'" +
           (problem.empty() ? "" : " (" + problem + ")"));
  }
  std::string id_problem = string_value_problem(c.run_id);
  if (id_problem.empty() && c.run_id.size() > kMaxRunIdBytes) id_problem = "is longer than 256 bytes";
  if (!id_problem.empty()) fail("run_id '" + echo(c.run_id) + "' " + id_problem);
  if (c.delta_lower > c.delta_upper)
    fail("delta_lower (" + value_text(c, find_key("delta_lower", "")) + ") must not exceed delta_upper (" +
         value_text(c, find_key("delta_upper", "")) + ")");
  if (c.share_levels > c.depth)
    fail("share_levels must be in [0, depth=" + std::to_string(c.depth) + "], got " + std::to_string(c.share_levels));
  if (c.loss == "triplet" && c.negatives != 1)
    fail("negatives must be 1 for loss=triplet, got " + std::to_string(c.negatives));
  // The tree's size: k^depth leaves must stay addressable and sane.
  const double leaves = std::pow(static_cast<double>(c.num_children), static_cast<double>(c.depth));
  if (leaves > static_cast<double>(1 << 24)) {
    std::ostringstream m;
    m << "num_children^depth = " << leaves << " leaves is more than 2^24; choose a smaller depth or num_children";
    fail(m.str());
  }
  if (c.batch % world_size != 0)
    fail("batch (" + std::to_string(c.batch) + ") must be divisible by the number of ranks (" +
         std::to_string(world_size) + ")");
  const std::int64_t local = c.batch / world_size;
  if (local % c.micro_batch != 0)
    fail("micro_batch (" + std::to_string(c.micro_batch) + ") must divide batch/ranks = " + std::to_string(local) +
         "; choose micro_batch dividing " + std::to_string(local));
  balance_shares(c.balance, world_size);
  if (c.samples_per_pass % c.batch != 0)
    fail("samples_per_pass (" + std::to_string(c.samples_per_pass) + ") must be a multiple of batch (" +
         std::to_string(c.batch) + ")");
  if (c.samples_per_pass < world_size)
    fail("samples_per_pass (" + std::to_string(c.samples_per_pass) + ") must be at least the number of ranks");
}

std::string config_help() {
  std::ostringstream s;
  s << "usage: dualnet train [CONFIG.toml] [key=value ...]\n\n"
       "Trains twin deep ReLU networks on a hierarchical latent tree model and writes\n"
       "<out>/metrics.h5. Keys come from CONFIG.toml, then from key=value arguments\n"
       "(values are TOML: depth=5 lr=1e-2 bias=false loss=simp). Defaults are the reference\n"
       "configuration of the paper. Run on P ranks with: mpirun -n P dualnet train ...\n\n";
  s << key_lines(Config(), config_keys());
  s << "\nA run's saved config.toml also holds run_id, which dualnet assigns to each new run; it\n"
       "cannot be set. Such a file is a template for a new run: dualnet train config.toml out=NEW_DIR\n";
  return s.str();
}

std::string science_difference(const Config& a, const Config& b) {
  std::string diff;
  for (const auto& k : config_keys()) {
    if (!k.science) continue;
    const auto va = value_text(a, k), vb = value_text(b, k);
    if (va != vb) diff += (diff.empty() ? "" : ", ") + std::string(k.name) + " " + va + " vs " + vb;
  }
  return diff;
}

}  // namespace dualnet
