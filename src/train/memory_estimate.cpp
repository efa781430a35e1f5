#include "train/memory_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include "config/schedule.hpp"
#include "hltm/hltm.hpp"
#include "io/metrics_file.hpp"
#include "loss/loss.hpp"
#include "model/config_network.hpp"
#include "stats/evaluator.hpp"
#include "train/work_split.hpp"

namespace dualnet {
namespace {

constexpr double kDouble = sizeof(double), kInt64 = sizeof(std::int64_t);

// Whether the tree's counts fit the int fields of TreeShape and the int64 layouts sized from
// it; a tree beyond that (validate() refuses it) cannot run in any memory.
bool tree_fits(const Config& c) {
  if (c.depth < 1 || c.depth > kMaxDepth || c.num_children < 2 || c.hid < 1) return false;
  const double k = static_cast<double>(c.num_children), hid = static_cast<double>(c.hid);
  const double leaves = std::pow(k, static_cast<double>(c.depth)), latents = (leaves - 1.0) / (k - 1.0);
  const double int_max = static_cast<double>(std::numeric_limits<int>::max());
  return latents + leaves < int_max && latents * hid < int_max && hid * hid < int_max &&
         latents * k * hid * hid * hid < 1e18;  // n_conn, twice in the evaluator's totals
}

// Rank 0 writes metrics.h5 and the checkpoints as sealed files (io/sealed_file.hpp), built
// whole in memory (HDF5's core driver, grown in 1 MiB steps). A new file: the driver's image
// and the copy out that is sealed and written, two images. A metrics row rewrites the whole
// file: opening it holds the bytes read, the file-image property's copy and the driver's
// copy (three images of the old file), then the driver's and the copy out (two of the new);
// reading a checkpoint to resume holds the same three. Measured with 60 MB rows: 2 images of
// the new file at the 2nd row, 3 of the old one at the 4th, about 2 MB more after 60 rows.
// The file sizes bound what io/metrics_file.cpp and io/checkpoint.cpp write: their values plus
// measured overheads (HDF5 headers, attributes, the config text, the seal: 59-76 KB a file;
// the chunk index: about 300 bytes a metrics row), with a margin.
constexpr double kFileBaseBytes = 256.0 * 1024, kMetricsRowOverheadBytes = 1024.0;
constexpr double kImageSlackBytes = 1024.0 * 1024;  // per image: the driver's step

double new_file_images(double file_bytes) { return 2.0 * (file_bytes + kImageSlackBytes); }
double reopened_file_images(double file_bytes) { return 3.0 * (file_bytes + kImageSlackBytes); }

// metrics.h5 with `rows` rows (io/metrics_file.cpp: /hltm and the scales, one row per evaluation).
double metrics_file_bytes(const TreeShape& t, bool all_pairs, double rows) {
  const double L = t.n_latent, leaves = t.n_leaf, hid = t.hid, N = L * hid;
  const double fixed = 7.0 * L + 4.0 * leaves + N + hid + t.depth;
  const double row = 3.0 * L * hid + 7.0 * L + t.depth + 5.0 + (all_pairs ? L * N : 0.0);
  return kFileBaseBytes + 8.0 * fixed + rows * (8.0 * row + kMetricsRowOverheadBytes);
}

}  // namespace

MemoryEstimate estimate_memory(const Config& c, int world_size) {
  MemoryEstimate m;
  m.runtime = kRuntimeBytes;
  const int ranks = std::max(1, world_size);
  if (!tree_fits(c) || c.batch < 1 || c.negatives < 0 || c.samples_per_pass < 0 || c.eval_chunk < 1) {
    m.persistent = std::numeric_limits<double>::infinity();
    return m;
  }
  const NetworkShape net = network_shape(c);
  const TreeShape& t = net.tree;
  const double L = t.n_latent, nodes = L + t.n_leaf, hid = t.hid, N = L * hid;
  const double P = static_cast<double>(t.n_params());
  // The most items a rank's step may hold (train/work_split.hpp: fixed shares may give more).
  const std::int64_t micro = std::max<std::int64_t>(1, c.micro_batch);
  const std::int64_t items = most_step_units(c.batch / micro, ranks, balance_is_fixed(c.balance)) * micro,
                     views = c.negatives + 2;
  const std::int64_t rows = items * views;
  const double steps = static_cast<double>(steps_per_pass(c));
  const bool all_pairs = corr_full_enabled(c, t);
  const std::int64_t chunk = Evaluator::chunk_for(net, c.eval_chunk);
  // host_vector() goes through a host mirror where the Views are not in host memory.
  const bool mirrored = !Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;

  // Trainer's constructor, View by View.
  m.persistent = kDouble * nodes                                  // polarity
                 + 3.0 * kDouble * P                              // params, velocity, row_params
                 + 2.0 * SampleBatch::bytes(t, rows)              // this step's batch, the next one's
                 + Activations::bytes(t, rows)                    // train_act
                 + kDouble * (2.0 * items * (views - 1) + items)  // dist, coef, item_loss
                 + kDouble * rows * (hid + static_cast<double>(PaddedLayout(t).delta_columns()))  // grad_out, delta
                 + kInt64 * (P + 2 + kBatchSums + 1)  // grad, batch_sums, overflows
                 + kDouble * steps                    // step_losses
                 + Evaluator::workspace_bytes(net, chunk, all_pairs) + SampleBatch::bytes(t, chunk) +
                 Activations::bytes(t, chunk, false)                 // eval_samples, eval_act (train_act's weights)
                 + (mirrored && ranks > 1 ? kInt64 * (P + 2) : 0.0)  // the reducer's host copy of the gradient
                 // or, on one host, this rank's two slots of the gradient's shared-memory window
                 // (comm/shared_memory_sum.hpp; the others' slots are their own ranks' memory)
                 + (!mirrored && ranks > 1 ? 2.0 * kInt64 * (P + 2) : 0.0);
  // A resumed run keeps the checkpoint it read (commands/train.cpp holds it all run).
  const double checkpoint = kDouble * (3.0 * P + steps + nodes);  // params, velocity, row_params, losses, polarity
  if (!c.resume.empty()) m.persistent += checkpoint;

  // Short-lived peaks on top, each as rank 0 (which writes the files) sees it; the largest counts.
  // MPI's all-reduce of n int64 may take temporaries of up to twice the message.
  const auto mpi = [&](double n) { return ranks > 1 ? 2.0 * kInt64 * n : 0.0; };
  // Run start: create_metrics_file's polarity and rho (a View and its host copy) and its
  // index arrays (level, ref_level, parent, leaf_parent, one iota scale at a time).
  const double start = kDouble * 3.0 * nodes * (mirrored ? 2.0 : 1.0) +
                       kInt64 * (3.0 * L + t.n_leaf + std::max<double>(N, t.n_leaf)) +
                       new_file_images(metrics_file_bytes(t, all_pairs, 0.0));
  // After a training pass the host copy of its losses stays alive through the checkpoint and
  // the evaluation that follow.
  const double losses = kDouble * steps * (mirrored ? 2.0 : 1.0);
  // Evaluation: the exact all-reduce of the totals, finish()'s Views and results, then the
  // metrics row: the results, the weight norms (View and host copy) and the file's images,
  // largest for the last row of the run (bounded by the file it leaves).
  const double totals = static_cast<double>(Evaluator::totals_length(net, all_pairs));
  const double rows_written = static_cast<double>(c.epochs) + 1.0;
  const double write_row = Evaluator::result_bytes(net, all_pairs) + 4.0 * kDouble * L +  // norms, changes: View + copy
                           reopened_file_images(metrics_file_bytes(t, all_pairs, rows_written));
  const double eval = losses + std::max({mpi(totals), Evaluator::finish_bytes(net, all_pairs), write_row});
  // Checkpoint: host copies of params, velocity, step_losses and polarity, and the file's images.
  const double save = losses + checkpoint + (mirrored ? kDouble * std::max(P, steps) : 0.0) +
                      new_file_images(kFileBaseBytes + checkpoint);
  // A training step: the gradient's all-reduce.
  const double step = mpi(P + 2 + kBatchSums);
  // Resuming: the checkpoint file read whole, then the trainer compares its polarities with
  // the checkpoint's (two host copies).
  const double resume =
      c.resume.empty() ? 0.0 : reopened_file_images(kFileBaseBytes + checkpoint) + 2.0 * kDouble * nodes;
  // Rank 0 writes behind (io/write_behind.hpp): a metrics row's or a checkpoint's write may
  // still hold its copies and images while the next training pass, checkpoint or evaluation
  // makes its own, so the peak of one write adds to those of the rest.
  const double behind = std::max(write_row, checkpoint + new_file_images(kFileBaseBytes + checkpoint));
  m.transient = std::max({start, resume, std::max({eval, save, step}) + behind});
  return m;
}

std::int64_t estimate_memory_bytes(const Config& c, int world_size) {
  const double bytes = estimate_memory(c, world_size).total();
  // NaN and infinity saturate too.
  return !(bytes < 9e18) ? std::int64_t(9e18) : static_cast<std::int64_t>(std::ceil(bytes));
}

std::int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  long long kb = 0;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return static_cast<std::int64_t>(kb) * 1024;
  return 0;
}

}  // namespace dualnet
