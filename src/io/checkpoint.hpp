#pragma once
// Checkpoints: <out>/checkpoints/ckpt-e<epoch>-s<step>.h5 plus a `latest` file naming the
// newest. A checkpoint is the whole state of a run at a step boundary: the resolved config,
// weights, optimiser state, the position (epoch, step; the sample stream is a function of
// it), the losses of the pass so far, and the polarities. Written by rank 0 as a sealed file
// (io/sealed_file.hpp: kind "checkpoint", a SHA-256 over the whole file): temporary name,
// fsync'd, renamed, directory fsync'd; then `latest` is replaced the same way
// (write_file_atomic: its temporary file fsync'd, renamed, the directory fsync'd), so it
// never names a checkpoint that is not on disk, and a crash or a full disk mid-write never
// damages an earlier checkpoint. Read only after the seal is checked: a damaged or
// foreign file is refused before HDF5 sees a byte of it.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace dualnet {

constexpr const char* kCheckpointFormat = "dualnet-checkpoint";
// 2: sealed (version 1 files, unsealed with a checksum per dataset, are refused).
constexpr std::int64_t kCheckpointFormatVersion = 2;
constexpr const char* kCheckpointKind = "checkpoint";  // the seal's kind

// Position: the evaluation of `epoch` is in metrics.h5 (rows 0..epoch), and training steps
// [0, step) of that epoch's pass are done.
struct Checkpoint {
  Config config;
  std::int64_t epoch = 0;
  std::int64_t step = 0;
  std::int64_t world_size = 1;
  double last_train_rate = 0.0;  // samples/s of the last finished pass (for its metrics row)
  std::vector<double> params;
  std::vector<double> velocity;
  std::vector<double> step_losses;  // [steps per pass], the first `step` are valid
  std::vector<double> polarity;     // [latents + leaves]
  std::vector<double> row_params;   // the weights of metrics row `epoch` (for the next row's weight_change)
};

std::string checkpoint_dir(const std::string& run_dir);

// Writes the checkpoint atomically, updates `latest`, keeps the newest `keep`.
// Returns the checkpoint's path. A failure (a full disk) is one RuntimeError line; the
// earlier checkpoints and `latest` are then unchanged and no temporary file is left.
std::string write_checkpoint(const std::string& run_dir, const Checkpoint& c, std::int64_t keep);

// `where` is a run directory (its checkpoints/latest is used) or a checkpoint file.
// Throws UsageError with one line naming the file and the problem. `latest` must name a
// checkpoint (ckpt-e<epoch>-s<step>.h5) that resolves inside <run>/checkpoints.
Checkpoint read_checkpoint(const std::string& where);

// The run directory a checkpoint path belongs to.
std::string run_dir_of(const std::string& where);

}  // namespace dualnet
