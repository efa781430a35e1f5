#include "io/run_dir.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "io/sealed_file.hpp"
#include "util/error.hpp"

namespace fs = std::filesystem;

namespace dualnet {

std::string metrics_path(const Config& cfg) { return (fs::path(cfg.out) / "metrics.h5").string(); }

// POSIX writes with every return value checked (an ofstream hides ENOSPC until it is too
// late to tell), fsync, rename, directory fsync; a failure removes the temporary file.
void write_text_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

RunLock prepare_run_dir(const Config& cfg, const World& world) {
  RunLock lock;
  on_all_ranks(world, [&] {
    if (!world.root()) return;
    const fs::path out(cfg.out);
    std::error_code ec;
    if (fs::exists(out, ec)) {
      if (!fs::is_directory(out, ec)) throw UsageError("out: '" + cfg.out + "' exists and is not a directory");
      if (!cfg.overwrite)
        throw UsageError("out: run directory '" + cfg.out + "' already exists; pass overwrite=true to replace it");
      lock = RunLock::acquire(cfg.out);  // never delete the files of a live run
      for (const char* name : {"metrics.h5", "config.toml", "timing.json", "checkpoints"}) {
        fs::remove_all(out / name, ec);
        if (ec) throw RuntimeError("out: cannot remove '" + (out / name).string() + "': " + ec.message());
      }
    } else {
      if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
      // mkdir, not create_directories: of two runs started at once, one is refused here.
      if (ec || ::mkdir(cfg.out.c_str(), 0777) != 0) {
        const std::string why = ec ? ec.message() : std::strerror(errno);
        if (!ec && errno == EEXIST)
          throw UsageError("out: run directory '" + cfg.out + "' already exists; pass overwrite=true to replace it");
        throw UsageError("out: cannot create run directory '" + cfg.out + "': " + why);
      }
      lock = RunLock::acquire(cfg.out);
    }
    try {
      write_text_atomic((out / "config.toml").string(), cfg.to_stored_toml());
    } catch (const Error&) {
      discard_unstarted_run(cfg);  // a full disk leaves nothing that blocks the same command
      throw;
    }
  });
  return lock;
}

void discard_unstarted_run(const Config& cfg) {
  const fs::path out(cfg.out);
  std::error_code ec;
  if (fs::exists(out / "checkpoints" / "latest", ec)) return;  // resumable: keep everything
  for (const char* name : {"metrics.h5", "config.toml"}) {
    fs::remove((out / name).string(), ec);
    fs::remove(temp_path((out / name).string()), ec);  // left by the write that failed
  }
  fs::remove_all(out / "checkpoints", ec);
  fs::remove(out, ec);  // only if empty: other files in the directory were not ours
}

}  // namespace dualnet
