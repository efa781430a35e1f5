#pragma once
// What a resume must establish before it touches a run: which run directory it continues,
// the config it continues with, and that the checkpoint, metrics.h5 and config.toml all
// belong to that one run (the same run_id) at a position the requested epochs keep.
// Every failure is one UsageError line; nothing is read twice or written here.
#include <string>
#include <vector>

#include "config/config.hpp"
#include "io/checkpoint.hpp"

namespace dualnet {

// A fresh identity for a new run: creation time and 64 random bits.
std::string new_run_id();

// The run directory that `resume=<where>` continues: `where` itself when it is a directory,
// else <run> for a checkpoint file <run>/checkpoints/<file> (symbolic links resolved).
std::string resumed_run_dir(const std::string& where);

// The checkpoint's config with the keys the user gave on top; science keys must not change,
// and `out`, if given, must name the run directory.
Config resumed_config(const Config& requested, const std::string& toml_path, const std::vector<std::string>& overrides,
                      const Checkpoint& ckpt, const std::string& run_dir);

// Identity and position: config.toml, metrics.h5 and the checkpoint carry the same run_id,
// metrics.h5 holds the rows the checkpoint has seen, and `epochs` deletes no finished row.
void check_resume(const Config& cfg, const Checkpoint& ckpt);

}  // namespace dualnet
