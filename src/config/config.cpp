#include "config/config.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>
#include <toml.hpp>

#include "util/error.hpp"

namespace dualnet {
namespace {

constexpr double kNoMax = std::numeric_limits<double>::infinity();
constexpr double kIntMax = 9.0e18;

}  // namespace

const std::vector<KeySpec>& config_keys() {
  static const std::vector<KeySpec> keys = {
      {"depth", &Config::depth, 1, 20, {}, true, "levels of latent variables in the tree (root = level 0)"},
      {"num_children", &Config::num_children, 2, 16, {}, true, "children per node (k of the k-ary tree)"},
      {"delta_lower", &Config::delta_lower, 0, 1, {}, true, "lower bound of |polarity| of each edge"},
      {"delta_upper", &Config::delta_upper, 0, 1, {}, true, "upper bound of |polarity| of each edge"},
      {"share_levels", &Config::share_levels, 0, 20, {}, true,
       "latent levels above this one are shared by anchor and positive (1: the root only); at most depth"},
      {"negatives", &Config::negatives, 1, 64, {}, true, "negatives per anchor (H); triplet needs 1"},
      {"hid", &Config::hid, 1, 4096, {}, true, "neurons per latent node"},
      {"bias", &Config::bias, 0, 0, {}, true, "give every neuron a bias (false: bias-free network)"},
      {"normalize_output", &Config::normalize_output, 0, 0, {}, true, "output f = h_root/(|h_root|+1e-4) (false: f = h_root)"},
      {"loss", &Config::loss, 0, 0, {"simp", "triplet", "infonce", "ref_nce", "ref_subtract"}, true,
       "contrastive loss (SPEC section 4)"},
      {"temp", &Config::temp, 1e-6, 1e6, {}, true, "temperature tau of triplet, infonce, ref_nce"},
      {"margin", &Config::margin, 0, kNoMax, {}, true, "margin r of the triplet loss"},
      {"lr", &Config::lr, 0, kNoMax, {}, true, "SGD learning rate"},
      {"momentum", &Config::momentum, 0, 0.999999, {}, true, "SGD momentum (PyTorch convention)"},
      {"weight_decay", &Config::weight_decay, 0, kNoMax, {}, true, "SGD weight decay (L2 on weights and biases)"},
      {"batch", &Config::batch, 1, 1 << 24, {}, true, "global batch (anchors per SGD step, over all ranks)"},
      {"micro_batch", &Config::micro_batch, 1, 1 << 20, {}, true,
       "anchors per exactly-reduced gradient chunk; must divide batch/ranks (rank-count invariance)"},
      {"samples_per_pass", &Config::samples_per_pass, 1, kIntMax, {}, true,
       "anchors per evaluation pass and per training pass (N); a multiple of batch"},
      {"epochs", &Config::epochs, 0, 1e9, {}, false, "training epochs (each: evaluation pass, then training pass)"},
      {"seed", &Config::seed, 0, kIntMax, {}, true, "seed of polarities, weights and the sample stream"},
      {"corr_full", &Config::corr_full, 0, 0, {"auto", "true", "false"}, false,
       "write /metrics/corr_full (every latent x every neuron); auto: if one epoch's slice < 64 MiB"},
      {"eval_chunk", &Config::eval_chunk, 1, 1 << 24, {}, false, "anchors per evaluation kernel launch (memory vs speed)"},
      {"out", &Config::out, 0, 0, {}, false, "run directory (metrics.h5, config.toml, timing.json)"},
      {"overwrite", &Config::overwrite, 0, 0, {}, false, "replace an existing run directory"},
      {"reducer", &Config::reducer, 0, 0, {"auto", "mpi", "nccl"}, false,
       "gradient all-reduce: auto = nccl on a CUDA build, else mpi"},
      {"progress_every", &Config::progress_every, 0, kIntMax, {}, false,
       "also print a progress line every this many training steps (0: once per epoch)"},
      {"resume", &Config::resume, 0, 0, {}, false,
       "continue the run in this run directory (or from this checkpoint file); science keys must match"},
      {"checkpoint_every", &Config::checkpoint_every, 1, kIntMax, {}, false,
       "write a checkpoint every this many epochs (and always after the last)"},
      {"checkpoint_seconds", &Config::checkpoint_seconds, 0, kNoMax, {}, false,
       "also write one when this many seconds passed since the last (0: off)"},
      {"keep_checkpoints", &Config::keep_checkpoints, 1, 1000000, {}, false, "checkpoints kept in <out>/checkpoints"},
  };
  return keys;
}

namespace {

const KeySpec& find_key(const std::string& name, const std::string& origin) {
  for (const auto& k : config_keys())
    if (name == k.name) return k;
  throw UsageError(origin + ": unknown key '" + name + "' (see 'dualnet train --help' for the keys)");
}

std::string allowed_text(const KeySpec& k) {
  struct Visitor {
    const KeySpec& k;
    std::string operator()(std::int64_t Config::*) const {
      std::ostringstream s;
      s << "an integer in [" << static_cast<long long>(k.min) << ", ";
      if (k.max >= kIntMax) s << "inf"; else s << static_cast<long long>(k.max);
      s << "]";
      return s.str();
    }
    std::string operator()(double Config::*) const {
      std::ostringstream s;
      s << "a number in [" << k.min << ", ";
      if (std::isinf(k.max)) s << "inf"; else s << k.max;
      s << "]";
      return s.str();
    }
    std::string operator()(bool Config::*) const { return "true or false"; }
    std::string operator()(std::string Config::*) const {
      if (k.choices.empty()) return "a string";
      std::string s = "one of ";
      for (size_t i = 0; i < k.choices.size(); ++i) s += (i ? "|" : "") + k.choices[i];
      return s;
    }
  };
  return std::visit(Visitor{k}, k.field);
}

std::string value_text(const Config& cfg, const KeySpec& k) {
  struct Visitor {
    const Config& c;
    std::string operator()(std::int64_t Config::*f) const { return std::to_string(c.*f); }
    std::string operator()(double Config::*f) const {
      char buf[64];
      const auto res = std::to_chars(buf, buf + sizeof buf, c.*f);  // shortest exact text
      std::string t(buf, res.ptr);
      if (t.find_first_of(".eEin") == std::string::npos) t += ".0";  // keep it a TOML float
      return t;
    }
    std::string operator()(bool Config::*f) const { return c.*f ? "true" : "false"; }
    std::string operator()(std::string Config::*f) const {
      std::ostringstream s;
      s << std::quoted(c.*f);
      return s.str();
    }
  };
  return std::visit(Visitor{cfg}, k.field);
}

// Sets one key from a parsed TOML value; `raw` is the user's text for messages.
void set_key(Config& cfg, const KeySpec& k, const toml::value& v, const std::string& raw,
             const std::string& origin) {
  const auto bad = [&]() {
    return UsageError(origin + ": key '" + std::string(k.name) + "' must be " + allowed_text(k) + ", got '" + raw + "'");
  };
  if (auto f = std::get_if<std::int64_t Config::*>(&k.field)) {
    if (!v.is_integer()) throw bad();
    const auto x = v.as_integer();
    if (static_cast<double>(x) < k.min || static_cast<double>(x) > k.max) throw bad();
    cfg.**f = x;
  } else if (auto f = std::get_if<double Config::*>(&k.field)) {
    double x;
    if (v.is_floating()) x = v.as_floating();
    else if (v.is_integer()) x = static_cast<double>(v.as_integer());
    else throw bad();
    if (!std::isfinite(x) || x < k.min || x > k.max) throw bad();
    cfg.**f = x;
  } else if (auto f = std::get_if<bool Config::*>(&k.field)) {
    if (!v.is_boolean()) throw bad();
    cfg.**f = v.as_boolean();
  } else if (auto f = std::get_if<std::string Config::*>(&k.field)) {
    std::string s;
    if (v.is_string()) s = v.as_string().str;
    else if (v.is_boolean()) s = v.as_boolean() ? "true" : "false";
    else throw bad();
    if (!k.choices.empty()) {
      bool ok = false;
      for (const auto& c : k.choices) ok = ok || (c == s);
      if (!ok) throw bad();
    }
    if (s.empty() && std::string(k.name) != "resume") throw bad();  // resume="" means: a new run
    cfg.**f = s;
  }
}

std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  // toml11 prefixes its messages with "[error] ".
  const std::string tag = "[error] ";
  if (line.rfind(tag, 0) == 0) line = line.substr(tag.size());
  return line;
}

void apply_table(Config& cfg, const toml::value& root, const std::string& origin) {
  if (!root.is_table()) throw UsageError(origin + ": expected a TOML table of keys");
  for (const auto& [name, value] : root.as_table()) {
    const KeySpec& k = find_key(name, origin);
    std::ostringstream raw;
    raw << value;
    set_key(cfg, k, value, raw.str(), origin);
  }
}

toml::value parse_toml_text(const std::string& text, const std::string& origin) {
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

}  // namespace

std::string Config::to_toml() const {
  std::string s;
  for (const auto& k : config_keys()) s += std::string(k.name) + " = " + value_text(*this, k) + "\n";
  return s;
}

Config parse_config(const std::string& toml_path, const std::vector<std::string>& overrides, const Config& base) {
  Config cfg = base;
  if (!toml_path.empty()) {
    std::ifstream in(toml_path, std::ios::binary);
    if (!in) throw UsageError("config file '" + toml_path + "' cannot be read (missing or not readable)");
    std::stringstream text;
    text << in.rdbuf();
    apply_table(cfg, parse_toml_text(text.str(), toml_path), "config file '" + toml_path + "'");
  }
  for (const auto& ov : overrides) {
    const auto eq = ov.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("argument '" + ov + "' is not of the form key=value");
    const std::string name = ov.substr(0, eq);
    const std::string raw = ov.substr(eq + 1);
    const KeySpec& k = find_key(name, "command line");
    // Values are TOML (depth=5, lr=1e-2, bias=false, out="a b"); bare words are strings (loss=simp).
    toml::value v;
    try {
      std::istringstream in("v = " + raw);
      v = toml::parse(in, "override").at("v");
    } catch (const std::exception&) {
      v = toml::value(raw);
    }
    set_key(cfg, k, v, raw, "command line");
  }
  return cfg;
}

Config config_from_toml_text(const std::string& text, const std::string& origin) {
  Config cfg;
  apply_table(cfg, parse_toml_text(text, origin), origin);
  return cfg;
}

void validate(const Config& c, int world_size) {
  const auto fail = [](const std::string& m) { throw UsageError(m); };
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
  if (c.samples_per_pass % c.batch != 0)
    fail("samples_per_pass (" + std::to_string(c.samples_per_pass) + ") must be a multiple of batch (" +
         std::to_string(c.batch) + ")");
  if (c.samples_per_pass < world_size)
    fail("samples_per_pass (" + std::to_string(c.samples_per_pass) + ") must be at least the number of ranks");
}

std::string config_help() {
  const Config defaults;
  std::ostringstream s;
  s << "usage: dualnet train [CONFIG.toml] [key=value ...]\n\n"
       "Trains twin deep ReLU networks on a hierarchical latent tree model and writes\n"
       "<out>/metrics.h5. Keys come from CONFIG.toml, then from key=value arguments\n"
       "(values are TOML: depth=5 lr=1e-2 bias=false loss=simp). Defaults are the reference\n"
       "configuration of the paper. Run on P ranks with: mpirun -n P dualnet train ...\n\n";
  s << std::left << "  " << std::setw(20) << "key" << std::setw(14) << "default"
    << "allowed / meaning\n";
  for (const auto& k : config_keys()) {
    s << "  " << std::setw(20) << k.name << std::setw(14) << value_text(defaults, k) << " " << allowed_text(k)
      << "\n" << std::setw(37) << "" << k.help << "\n";
  }
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
