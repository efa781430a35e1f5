#pragma once
// <out>/metrics.h5: the measurements of every evaluation pass, one row per pass, written
// by rank 0. A sealed file (io/sealed_file.hpp, kind "metrics"), never changed in place:
// each row is added to a copy, which is sealed and renamed over the old file. So a killed
// run or a full disk leaves every finished row readable and nothing half-written, and a
// reader holding the file open (h5py, xarray, with or without file locking) keeps its
// consistent old version and never blocks the writer. Layout: docs/metrics-format.md.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "hltm/tree.hpp"
#include "stats/evaluator.hpp"

namespace dualnet {

constexpr const char* kMetricsFormat = "dualnet-metrics";
// 2: sealed (a 512-byte user block with the seal before the HDF5 superblock); the HDF5
// content is as in version 1, which the analysis still reads.
constexpr std::int64_t kMetricsFormatVersion = 2;
constexpr const char* kMetricsKind = "metrics";  // the seal's kind

// A row (epoch >= 1) shows a collapsed network when the root's outputs all lie on one ray
// (output_rank1_gap <= kCollapseGap; every root neuron dead included), or when the
// training pass before it moved no weight at all. docs/metrics-format.md#collapse.
constexpr double kCollapseGap = 1e-6;

struct MetricsRow;
bool is_collapsed(const MetricsRow& row);

struct MetricsRow {
  std::int64_t epoch = 0;
  const EvalResult* eval = nullptr;
  std::vector<double> weight_norm;    // [latent]
  std::vector<double> weight_change;  // [latent]: |W(e) - W(e-1)| / |W(e-1)|, NaN in row 0
  double train_loss_mean = 0.0;       // NaN for row 0
  double train_loss_sem = 0.0;
  double samples_per_s = 0.0;
};

// A /metrics dataset with one row per evaluation pass (the epoch axis first). metrics_datasets()
// is the one list of them: the writer, a resume's truncation and the tests use it; the
// analysis package checks itself against the files (docs/metrics-format.md has the table).
struct MetricsDataset {
  const char* name;
  std::vector<const char*> dims;  // after the epoch axis: latent, hid, level or neuron
  const char* long_name;          // CF-style attributes, and how it is computed
  const char* units;
  const char* description;
  const double* (*values)(const MetricsRow& row);  // the row's values, row-major
  // Absent from some files: corr_full when the config turns it off, the covop_* datasets
  // from files of runs begun before they existed (a resume then leaves them out).
  bool optional;
  bool timing;  // differs between otherwise identical runs (not bit-identical)
};
const std::vector<MetricsDataset>& metrics_datasets();

// Whether /metrics/corr_full is written for this config (key corr_full; auto: while the
// whole run's corr_full, (epochs + 1) rows, is at most kCorrFullAutoBytes). A new run stores the
// resolved value (true or false) in its config, and a resume keeps it.
bool corr_full_enabled(const Config& cfg, const TreeShape& tree);
// The same from the config key and the sizes (in floating point: the memory estimate sees
// absurd configs before they are refused).
bool corr_full_enabled(const std::string& setting, double latents, double neurons, double rows);

// Creates the file with /hltm (tree, polarities) and an empty /metrics; polarity and rho are
// over all nodes (latents then leaves).
void create_metrics_file(const std::string& path, const Config& cfg, const TreeShape& tree,
                         const std::vector<double>& polarity, const std::vector<double>& rho, int world_size);

// Adds row `row.epoch`. The current file is checked (its seal) first, so a row is never
// added to damaged bytes. Every failure is one RuntimeError line; the file is then unchanged.
void append_metrics_row(const std::string& path, const MetricsRow& row);

// What a resume needs to know of an existing file: its finished rows and the run it
// belongs to (the run_id of its config_toml; "" if none).
struct MetricsFileInfo {
  std::int64_t rows = 0;
  std::string run_id;
};

// For a resumed run, before any work: the file must carry an intact seal, be dualnet's and
// match the tree. Read-only; UsageError with one line otherwise.
MetricsFileInfo inspect_metrics_file(const std::string& path, const TreeShape& tree);

// For a resumed run: checks the file (as above), keeps its first
// `rows` rows (the evaluations the checkpoint has seen) and records the new config, in a
// new sealed file renamed over the old one. UsageError with one line if the file is not an
// intact dualnet metrics file; RuntimeError with one line if it cannot be written.
void reopen_metrics_file(const std::string& path, std::int64_t rows, const Config& cfg, const TreeShape& tree,
                         int world_size);

}  // namespace dualnet
