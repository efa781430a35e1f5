#pragma once
// <out>/metrics.h5: the measurements of every evaluation pass, one row per pass, written
// by rank 0. The file is opened, extended by one row and closed again for every pass, so a
// killed run leaves every finished row readable. Layout: docs/metrics-format.md.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "hltm/tree.hpp"
#include "stats/evaluator.hpp"

namespace dualnet {

constexpr const char* kMetricsFormat = "dualnet-metrics";
constexpr std::int64_t kMetricsFormatVersion = 1;

struct MetricsRow {
  std::int64_t epoch = 0;
  const EvalResult* eval = nullptr;
  std::vector<double> weight_norm;  // [latent]
  double train_loss_mean = 0.0;     // NaN for row 0
  double train_loss_sem = 0.0;
  double samples_per_s = 0.0;
};

// Whether /metrics/corr_full is written for this config (key corr_full, auto: < 64 MiB a row).
bool corr_full_enabled(const Config& cfg, const TreeShape& tree);
// The same from the config key and the tree's sizes (in floating point: the memory estimate
// sees absurd configs before they are refused).
bool corr_full_enabled(const std::string& setting, double latents, double neurons);

// Creates the file with /hltm (tree, polarities) and an empty /metrics; polarity and rho are
// over all nodes (latents then leaves).
void create_metrics_file(const std::string& path, const Config& cfg, const TreeShape& tree,
                         const std::vector<double>& polarity, const std::vector<double>& rho, int world_size);

void append_metrics_row(const std::string& path, const MetricsRow& row);

// For a resumed run, before any work: the file must be dualnet's, match the tree and hold at
// least `rows` rows. Read-only; UsageError with one line otherwise.
void check_metrics_file(const std::string& path, std::int64_t rows, const TreeShape& tree);

// For a resumed run: checks the file (as above), keeps its first
// `rows` rows (the evaluations the checkpoint has seen) and records the new config.
// UsageError with one line if the file is not a dualnet metrics file.
void reopen_metrics_file(const std::string& path, std::int64_t rows, const Config& cfg, const TreeShape& tree,
                         int world_size);

}  // namespace dualnet
