#pragma once
// Checkpoints: <out>/checkpoints/ckpt-e<epoch>-s<step>.h5 plus a `latest` file naming the
// newest. A checkpoint is the whole state of a run at a step boundary: the resolved config,
// weights, optimiser state, the position (epoch, step; the sample stream is a function of
// it), the losses of the pass so far, and the polarities. Written by rank 0: temporary
// name, flushed, fsync'd and closed, renamed, then `latest` replaced the same way; so a
// crash mid-write never damages an earlier checkpoint. Every dataset carries a checksum.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace dualnet {

constexpr const char* kCheckpointFormat = "dualnet-checkpoint";
constexpr std::int64_t kCheckpointFormatVersion = 1;

// Position: the evaluation of `epoch` is in metrics.h5 (rows 0..epoch), and training steps
// [0, step) of that epoch's pass are done.
struct Checkpoint {
  Config config;
  std::int64_t epoch = 0;
  std::int64_t step = 0;
  std::int64_t world_size = 1;
  double last_train_rate = 0.0;     // samples/s of the last finished pass (for its metrics row)
  std::vector<double> params;
  std::vector<double> velocity;
  std::vector<double> step_losses;  // [steps per pass], the first `step` are valid
  std::vector<double> polarity;     // [latents + leaves]
};

std::string checkpoint_dir(const std::string& run_dir);

// Writes the checkpoint atomically, updates `latest`, keeps the newest `keep`.
// Returns the checkpoint's path.
std::string write_checkpoint(const std::string& run_dir, const Checkpoint& c, std::int64_t keep);

// `where` is a run directory (its checkpoints/latest is used) or a checkpoint file.
// Throws UsageError with one line naming the file and the problem.
Checkpoint read_checkpoint(const std::string& where);

// The run directory a checkpoint path belongs to.
std::string run_dir_of(const std::string& where);

}  // namespace dualnet
