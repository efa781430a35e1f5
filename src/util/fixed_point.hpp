#pragma once
// Exact, order-free sums: values are rounded to 64-bit fixed point and summed as integers,
// so any split over ranks, threads or GPUs gives the same bits. Each rank rounds sums over
// a fixed set of items in a fixed order (a micro-batch of training items, a block of
// evaluation anchors), then integers are added — within the rank and across ranks.
//   gradients, losses: resolution 2^-40, |x| < 2^23
//   evaluation sums:   resolution 2^-32, |x| < 2^31 (sums over one block of anchors)
#include <Kokkos_Core.hpp>
#include <cstdint>

#include "util/kokkos_compat.hpp"

namespace dualnet {

struct FixedPoint {
  double scale;
  double limit;
};
constexpr FixedPoint kGradFixed{1099511627776.0, 8388608.0};  // 2^40, 2^23
constexpr FixedPoint kStatFixed{4294967296.0, 2147483648.0};  // 2^32, 2^31

// Rounds to nearest (ties to even, the FPU's default mode: two instructions on x86, and the
// same rule on a GPU); *overflow is set when |x| does not fit (or x is not finite), and the
// value is then 0. The branch-free form matters: a branch on the sign of a gradient
// mispredicted half the time in the weight gradient, which rounds every micro-batch sum.
KOKKOS_INLINE_FUNCTION std::int64_t to_fixed(double x, bool* overflow, FixedPoint f = kGradFixed) {
  const bool out_of_range = !(x < f.limit && x > -f.limit);
  *overflow = *overflow || out_of_range;
  return static_cast<std::int64_t>(kmath::nearbyint(out_of_range ? 0.0 : x * f.scale));
}

KOKKOS_INLINE_FUNCTION double from_fixed(std::int64_t v, FixedPoint f = kGradFixed) {
  return static_cast<double>(v) / f.scale;
}

}  // namespace dualnet
