#include "bench/peak_flops.hpp"

#include <algorithm>
#include <chrono>

namespace dualnet {

double measure_peak_flops_per_core() {
  // 16 independent accumulators of 4 doubles (GCC vector extensions): enough independent
  // fused multiply-adds in flight to saturate two FMA pipes of 4 lanes on current x86.
  typedef double v4d __attribute__((vector_size(32)));
  constexpr int kChains = 16;
  v4d acc[kChains];
  const v4d mul = {1.0 - 1e-9, 1.0 - 2e-9, 1.0 - 3e-9, 1.0 - 4e-9}, add = {1e-12, 1e-12, 1e-12, 1e-12};
  for (int i = 0; i < kChains; ++i) acc[i] = v4d{1.0, 1.0, 1.0, 1.0} + 1e-3 * i;
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const long iters = 4000000;
    const auto t0 = std::chrono::steady_clock::now();
    for (long it = 0; it < iters; ++it) {
#if defined(__GNUC__) && !defined(__NVCC__)
#pragma GCC unroll 16
#endif
      for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * mul + add;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * 4 * kChains * iters / s);
  }
  double sink = 0.0;
  for (const v4d& a : acc) sink += a[0] + a[1] + a[2] + a[3];
  if (sink == 0.123456789) best += 1.0;  // keeps the loop observable
  return best;
}

}  // namespace dualnet
