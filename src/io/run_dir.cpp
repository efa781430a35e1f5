#include "io/run_dir.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "util/error.hpp"

namespace fs = std::filesystem;

namespace dualnet {

std::string metrics_path(const Config& cfg) { return (fs::path(cfg.out) / "metrics.h5").string(); }

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) throw RuntimeError("cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw RuntimeError("cannot rename '" + tmp + "' to '" + path + "'");
}

void prepare_run_dir(const Config& cfg, const World& world) {
  on_all_ranks(world, [&] {
    if (!world.root()) return;
    const fs::path out(cfg.out);
    std::error_code ec;
    if (fs::exists(out, ec)) {
      if (!fs::is_directory(out, ec))
        throw UsageError("out: '" + cfg.out + "' exists and is not a directory");
      if (!cfg.overwrite)
        throw UsageError("out: run directory '" + cfg.out + "' already exists; pass overwrite=true to replace it");
      for (const char* name : {"metrics.h5", "config.toml", "timing.json", "checkpoints"}) fs::remove_all(out / name, ec);
    }
    fs::create_directories(out, ec);
    if (ec) throw UsageError("out: cannot create run directory '" + cfg.out + "': " + ec.message());
    try {
      write_text_atomic((out / "config.toml").string(), cfg.to_toml());
    } catch (const Error&) {
      throw UsageError("out: run directory '" + cfg.out + "' is not writable");
    }
  });
}

}  // namespace dualnet
