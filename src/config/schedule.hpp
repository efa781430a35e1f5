#pragma once
// Where each pass of a run reads the sample stream (docs/science.md#schedule): the passes are
// numbered eval 0, train 0, eval 1, train 1, ..., and pass i owns the global items
// [i N, (i + 1) N), N = samples_per_pass. The one place these indices are computed: the
// trainer samples from them and a checkpoint records its position in them.
#include <cstdint>

#include "config/config.hpp"

namespace dualnet {

// Training steps of a pass (samples_per_pass is a multiple of batch).
inline std::int64_t steps_per_pass(const Config& cfg) { return cfg.samples_per_pass / cfg.batch; }

// First global item of epoch `epoch`'s evaluation pass (train = false) or training pass.
inline std::int64_t pass_first_item(const Config& cfg, std::int64_t epoch, bool train) {
  return (2 * epoch + (train ? 1 : 0)) * cfg.samples_per_pass;
}

// First global item of training step `step` of epoch `epoch` (the step's batch is the next
// cfg.batch items, split over the ranks in contiguous slices).
inline std::int64_t step_first_item(const Config& cfg, std::int64_t epoch, std::int64_t step) {
  return pass_first_item(cfg, epoch, true) + step * cfg.batch;
}

}  // namespace dualnet
