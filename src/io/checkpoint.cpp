#include "io/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "config/schedule.hpp"
#include "io/hdf5.hpp"
#include "io/provenance.hpp"
#include "io/run_dir.hpp"
#include "io/sealed_file.hpp"
#include "util/error.hpp"

namespace fs = std::filesystem;

namespace dualnet {
namespace {

constexpr const char* kDamagedAdvice = "restore it or resume from an earlier checkpoint";
constexpr std::size_t kLatestMaxBytes = 4096;

std::string checkpoint_name(std::int64_t epoch, std::int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-e%06lld-s%09lld.h5", static_cast<long long>(epoch),
                static_cast<long long>(step));
  return buf;
}

// Whether `name` is one checkpoint_name() makes: ckpt-e<6+ digits>-s<9+ digits>.h5, so
// nothing read from `latest` can name a path elsewhere ('/', "..").
bool is_checkpoint_name(const std::string& name) {
  const auto digits = [&](size_t& pos, size_t at_least) {
    const size_t start = pos;
    while (pos < name.size() && name[pos] >= '0' && name[pos] <= '9') ++pos;
    return pos - start >= at_least && pos - start <= 19;
  };
  size_t pos = 0;
  if (name.compare(0, 6, "ckpt-e") != 0) return false;
  pos = 6;
  if (!digits(pos, 6) || name.compare(pos, 2, "-s") != 0) return false;
  pos += 2;
  return digits(pos, 9) && name.compare(pos, std::string::npos, ".h5") == 0;
}

std::vector<double> read_vector(const h5::Handle& file, const std::string& name, const std::string& path) {
  if (!h5::exists(file, name)) throw UsageError("resume: checkpoint '" + path + "' has no dataset '" + name + "'");
  try {
    return h5::read_doubles(file, name);
  } catch (const Error& e) {
    throw UsageError("resume: checkpoint '" + path + "': dataset '" + name + "' cannot be read: " + e.what());
  }
}

// Removes checkpoints beyond the newest `keep` (names sort by position) and temporary files
// a killed writer left (only rank 0 of the one run holding the directory writes here).
void prune(const fs::path& dir, const std::string& newest, std::int64_t keep) {
  std::error_code ec;
  std::vector<std::string> all;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (is_checkpoint_name(n))
      all.push_back(n);
    else if (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0 && n.rfind("ckpt-", 0) == 0)
      fs::remove(it->path(), ec);
  }
  if (ec) throw RuntimeError("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    if (all[i] == newest) continue;
    if (!fs::remove(dir / all[i], ec) && ec)
      throw RuntimeError("cannot remove old checkpoint '" + (dir / all[i]).string() + "': " + ec.message());
  }
}

}  // namespace

std::string checkpoint_dir(const std::string& run_dir) { return (fs::path(run_dir) / "checkpoints").string(); }

std::string write_checkpoint(const std::string& run_dir, const Checkpoint& c, std::int64_t keep) {
  const fs::path dir = checkpoint_dir(run_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw RuntimeError("cannot create '" + dir.string() + "': " + ec.message());
  const std::string name = checkpoint_name(c.epoch, c.step);
  const std::string final_path = (dir / name).string();
  h5::write_sealed_file(final_path, kCheckpointKind, "the earlier checkpoints are intact", [&](const h5::Handle& file) {
    h5::write_attr(file, "format", std::string(kCheckpointFormat));
    h5::write_attr(file, "format_version", kCheckpointFormatVersion);
    h5::write_attr(file, "config_toml", c.config.to_stored_toml());
    write_provenance(file);
    h5::write_attr(file, "epoch", c.epoch);
    h5::write_attr(file, "step", c.step);
    h5::write_attr(file, "stream_position", step_first_item(c.config, c.epoch, c.step));
    h5::write_attr(file, "world_size", c.world_size);
    h5::write_attr(file, "last_train_rate", c.last_train_rate);
    // The seal's SHA-256 covers every byte; no checksum per dataset is needed.
    for (const auto& [ds, v] :
         {std::pair{"params", &c.params}, std::pair{"velocity", &c.velocity}, std::pair{"step_losses", &c.step_losses},
          std::pair{"polarity", &c.polarity}, std::pair{"row_params", &c.row_params}})
      h5::write_dataset(file, ds, {static_cast<hsize_t>(v->size())}, v->data());
  });
  write_text_atomic((dir / "latest").string(), name + "\n");
  prune(dir, name, keep);
  return final_path;
}

std::string run_dir_of(const std::string& where) {
  const fs::path p(where);
  std::error_code ec;
  if (fs::is_directory(p, ec)) return p.string();
  return p.parent_path().parent_path().string();  // <run>/checkpoints/<file>
}

Checkpoint read_checkpoint(const std::string& where) {
  std::string path = where;
  std::error_code ec;
  if (fs::is_directory(where, ec)) {
    const fs::path latest = fs::path(checkpoint_dir(where)) / "latest";
    if (!fs::exists(fs::symlink_status(latest, ec)))
      throw UsageError("resume: '" + where + "' has no checkpoint (" + latest.string() + " is missing)");
    std::string name = read_small_regular_file(latest.string(), "resume: checkpoint pointer", kLatestMaxBytes);
    if (!name.empty() && name.back() == '\n') name.pop_back();
    if (!is_checkpoint_name(name))
      throw UsageError("resume: '" + latest.string() +
                       "' is damaged (it does not name a checkpoint ckpt-e<epoch>-s<step>.h5)");
    path = (latest.parent_path() / name).string();
    if (!fs::exists(path, ec))
      throw UsageError("resume: checkpoint '" + path + "' (named by " + latest.string() + ") does not exist");
    // `latest` and the file it names must lie in this run's checkpoints/ (no symlink out).
    const fs::path inside = fs::canonical(where, ec) / "checkpoints";
    const fs::path real = ec ? fs::path() : fs::canonical(path, ec);
    if (ec || real.parent_path() != inside)
      throw UsageError("resume: checkpoint '" + path + "' is outside the run directory '" + where + "'");
  } else if (!fs::exists(fs::symlink_status(where, ec))) {
    throw UsageError("resume: checkpoint '" + path + "' does not exist");
  }
  // The seal first: HDF5 parses only bytes whose SHA-256 matches what dualnet wrote.
  h5::Handle file = h5::open_sealed_file(path, kCheckpointKind, "resume: checkpoint", kDamagedAdvice);
  Checkpoint c;
  try {
    if (!h5::has_attr(file, "format") || h5::read_attr_string(file, "format") != kCheckpointFormat)
      throw UsageError("resume: '" + path + "' is not a dualnet checkpoint");
    const auto version = h5::read_attr_int(file, "format_version");
    if (version > kCheckpointFormatVersion)
      throw UsageError("resume: checkpoint '" + path + "' has format version " + std::to_string(version) +
                       ", newer than this dualnet reads (" + std::to_string(kCheckpointFormatVersion) + ")");
    if (version < kCheckpointFormatVersion)
      throw UsageError("resume: checkpoint '" + path + "' has format version " + std::to_string(version) +
                       " (written by an older dualnet); this dualnet resumes from version " +
                       std::to_string(kCheckpointFormatVersion));
    c.config = config_from_toml_text(h5::read_attr_string(file, "config_toml"), "checkpoint '" + path + "'");
    c.epoch = h5::read_attr_int(file, "epoch");
    c.step = h5::read_attr_int(file, "step");
    c.world_size = h5::read_attr_int(file, "world_size");
    c.last_train_rate = h5::read_attr_double(file, "last_train_rate");
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError("resume: checkpoint '" + path + "' is damaged: " + e.what());
  }
  c.params = read_vector(file, "params", path);
  c.velocity = read_vector(file, "velocity", path);
  c.step_losses = read_vector(file, "step_losses", path);
  c.polarity = read_vector(file, "polarity", path);
  c.row_params = read_vector(file, "row_params", path);
  const std::int64_t steps = steps_per_pass(c.config);
  if (c.epoch < 0 || c.step < 0 || c.step > steps || static_cast<std::int64_t>(c.step_losses.size()) != steps ||
      c.params.size() != c.velocity.size() || c.params.size() != c.row_params.size())
    throw UsageError("resume: checkpoint '" + path + "' is inconsistent (position or sizes do not match its config)");
  return c;
}

}  // namespace dualnet
