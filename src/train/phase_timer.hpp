#pragma once
// Wall time per phase of the training step and the run (fenced, so GPU kernels count
// where they run). Phases are named once, in print order.
#include <chrono>
#include <string>
#include <vector>

#include "util/device_sync.hpp"

namespace dualnet {

enum Phase { kSample, kForward, kLoss, kBackward, kAllreduce, kUpdate, kEval, kIo, kPhaseCount };

inline const char* phase_name(int p) {
  static const char* names[kPhaseCount] = {"sample",    "forward", "loss", "backward",
                                           "allreduce", "update",  "eval", "io"};
  return names[p];
}

class PhaseTimer {
 public:
  // Ends the running phase (fencing the device) and starts phase p.
  void start(Phase p) {
    stop();
    current_ = p;
    t0_ = std::chrono::steady_clock::now();
  }
  void stop() {
    if (current_ < 0) return;
    wait_for_device(phase_name(current_));
    seconds_[current_] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    current_ = -1;
  }
  double seconds(int p) const { return seconds_[p]; }

 private:
  int current_ = -1;
  std::chrono::steady_clock::time_point t0_;
  double seconds_[kPhaseCount] = {};
};

}  // namespace dualnet
