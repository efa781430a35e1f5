#pragma once
// The run directory <out>: created (or refused) before any work, on rank 0, with the
// outcome agreed by every rank. Small text files are written atomically (temp + rename).
#include <string>

#include "comm/world.hpp"
#include "config/config.hpp"
#include "io/run_lock.hpp"

namespace dualnet {

// Refuses an existing <out> unless overwrite=true (then dualnet's own files in it are
// removed, once its lock is held), creates it, locks it and writes <out>/config.toml.
// UsageError on every rank on failure. Call it after every check that can refuse the run:
// from here on the directory changes. Rank 0 returns the held lock, other ranks an empty one.
RunLock prepare_run_dir(const Config& cfg, const World& world);

// After a new run failed before its first checkpoint (a full disk, say): removes what the
// run wrote and the directory if that leaves it empty, so the same command can start again.
// A run with a checkpoint is left whole: it is resumed instead.
void discard_unstarted_run(const Config& cfg);

// Replaces `path` with `text` atomically (temp, fsync, rename); RuntimeError with one line
// "cannot write '<path>': <reason>" on failure, the old file untouched, no temp left.
void write_text_atomic(const std::string& path, const std::string& text);

std::string metrics_path(const Config& cfg);

}  // namespace dualnet
