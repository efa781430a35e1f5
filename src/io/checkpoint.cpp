#include "io/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dualnet_version.hpp"
#include "io/hdf5.hpp"
#include "io/run_dir.hpp"
#include "util/error.hpp"

namespace fs = std::filesystem;

namespace dualnet {
namespace {

// FNV-1a over the bytes: detects a damaged dataset that HDF5 itself would read happily.
std::string checksum(const std::vector<double>& v) {
  std::uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(double); ++i) h = (h ^ p[i]) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_vector(const h5::Handle& file, const std::string& name, const std::vector<double>& v) {
  h5::Handle ds = h5::write_dataset(file, name, {static_cast<hsize_t>(v.size())}, v.data());
  h5::write_attr(ds, "checksum", checksum(v));
}

std::vector<double> read_vector(const h5::Handle& file, const std::string& name, const std::string& path) {
  if (!h5::exists(file, name)) throw UsageError("checkpoint '" + path + "' has no dataset '" + name + "'");
  std::vector<double> v;
  std::string stored;
  try {
    v = h5::read_doubles(file, name);
    stored = h5::read_attr_string(h5::open_dataset(file, name), "checksum");
  } catch (const Error&) {
    throw UsageError("checkpoint '" + path + "': dataset '" + name + "' cannot be read (damaged file)");
  }
  if (stored != checksum(v))
    throw UsageError("checkpoint '" + path + "': dataset '" + name + "' fails its checksum (corrupted)");
  return v;
}

std::string checkpoint_name(std::int64_t epoch, std::int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-e%06lld-s%09lld.h5", static_cast<long long>(epoch),
                static_cast<long long>(step));
  return buf;
}

}  // namespace

std::string checkpoint_dir(const std::string& run_dir) { return (fs::path(run_dir) / "checkpoints").string(); }

std::string write_checkpoint(const std::string& run_dir, const Checkpoint& c, std::int64_t keep) {
  const fs::path dir = checkpoint_dir(run_dir);
  fs::create_directories(dir);
  const std::string name = checkpoint_name(c.epoch, c.step);
  const std::string final_path = (dir / name).string(), tmp = final_path + ".tmp";
  {
    h5::Handle file = h5::create_file(tmp);
    h5::write_attr(file, "format", std::string(kCheckpointFormat));
    h5::write_attr(file, "format_version", kCheckpointFormatVersion);
    h5::write_attr(file, "config_toml", c.config.to_toml());
    h5::write_attr(file, "dualnet_version", std::string(DUALNET_VERSION));
    h5::write_attr(file, "git_commit", std::string(DUALNET_GIT_COMMIT));
    h5::write_attr(file, "epoch", c.epoch);
    h5::write_attr(file, "step", c.step);
    h5::write_attr(file, "stream_position", (2 * c.epoch + 1) * c.config.samples_per_pass + c.step * c.config.batch);
    h5::write_attr(file, "world_size", c.world_size);
    h5::write_attr(file, "last_train_rate", c.last_train_rate);
    write_vector(file, "params", c.params);
    write_vector(file, "velocity", c.velocity);
    write_vector(file, "step_losses", c.step_losses);
    write_vector(file, "polarity", c.polarity);
    h5::flush(file);
  }
  fsync_path(tmp);
  fs::rename(tmp, final_path);
  write_text_atomic((dir / "latest").string(), name + "\n");
  fsync_path(dir.string());
  // Keep the newest `keep` checkpoints (names sort by position).
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("ckpt-", 0) == 0 && e.path().extension() == ".h5") all.push_back(n);
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i)
    if (all[i] != name) fs::remove(dir / all[i]);
  return final_path;
}

std::string run_dir_of(const std::string& where) {
  const fs::path p(where);
  if (fs::is_directory(p)) return p.string();
  return p.parent_path().parent_path().string();  // <run>/checkpoints/<file>
}

Checkpoint read_checkpoint(const std::string& where) {
  std::string path = where;
  if (fs::is_directory(where)) {
    const fs::path latest = fs::path(checkpoint_dir(where)) / "latest";
    std::ifstream in(latest);
    std::string name;
    if (!(in >> name))
      throw UsageError("resume: '" + where + "' has no checkpoint (" + latest.string() + " is missing)");
    path = (latest.parent_path() / name).string();
  }
  if (!fs::exists(path)) throw UsageError("resume: checkpoint '" + path + "' does not exist");
  if (!h5::is_hdf5(path)) throw UsageError("resume: '" + path + "' is not a readable HDF5 file (truncated or damaged?)");
  Checkpoint c;
  h5::Handle file;
  try {
    file = h5::open_file(path, false);
  } catch (const Error&) {
    throw UsageError("resume: checkpoint '" + path + "' cannot be opened (truncated or damaged?)");
  }
  try {
    if (!h5::has_attr(file, "format") || h5::read_attr_string(file, "format") != kCheckpointFormat)
      throw UsageError("resume: '" + path + "' is not a dualnet checkpoint");
    const auto version = h5::read_attr_int(file, "format_version");
    if (version > kCheckpointFormatVersion)
      throw UsageError("resume: checkpoint '" + path + "' has format version " + std::to_string(version) +
                       ", newer than this dualnet reads (" + std::to_string(kCheckpointFormatVersion) + ")");
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
  const std::int64_t steps = c.config.samples_per_pass / c.config.batch;
  if (c.epoch < 0 || c.step < 0 || c.step > steps || static_cast<std::int64_t>(c.step_losses.size()) != steps ||
      c.params.size() != c.velocity.size())
    throw UsageError("resume: checkpoint '" + path + "' is inconsistent (position or sizes do not match its config)");
  return c;
}

}  // namespace dualnet
