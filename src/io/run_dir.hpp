#pragma once
// The run directory <out>: created (or refused) before any work, on rank 0, with the
// outcome agreed by every rank. Small text files are written atomically (temp + rename).
#include <string>

#include "comm/world.hpp"
#include "config/config.hpp"

namespace dualnet {

// Refuses an existing <out> unless overwrite=true (then dualnet's own files in it are
// removed), creates it, and writes <out>/config.toml. UsageError on every rank on failure.
void prepare_run_dir(const Config& cfg, const World& world);

void write_text_atomic(const std::string& path, const std::string& text);

std::string metrics_path(const Config& cfg);

}  // namespace dualnet
