#pragma once
// Seconds on the monotonic clock (steady_clock), for intervals: now_s() - t0.
#include <chrono>

namespace dualnet {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace dualnet
