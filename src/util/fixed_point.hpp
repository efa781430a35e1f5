#pragma once
// Exact, order-free sums: values are rounded to 64-bit fixed point (2^-40 resolution,
// |x| < 2^23) and summed as integers, so any split over ranks, threads or GPUs gives the
// same bits. dualnet sums every quantity that feeds the weights this way: each rank rounds
// per micro-batch sums (a fixed set of items in a fixed order), then integers are added.
#include <Kokkos_Core.hpp>
#include <cstdint>

namespace dualnet {

constexpr double kFixedScale = 1099511627776.0;  // 2^40
constexpr double kFixedLimit = 8388608.0;        // 2^23: larger magnitudes overflow

// Rounds to nearest; *overflow is set when |x| does not fit (or x is not finite).
KOKKOS_INLINE_FUNCTION std::int64_t to_fixed(double x, bool* overflow) {
  if (!(x < kFixedLimit && x > -kFixedLimit)) {
    *overflow = true;
    return 0;
  }
  const double scaled = x * kFixedScale;
  return static_cast<std::int64_t>(scaled >= 0.0 ? scaled + 0.5 : scaled - 0.5);
}

KOKKOS_INLINE_FUNCTION double from_fixed(std::int64_t v) { return static_cast<double>(v) / kFixedScale; }

}  // namespace dualnet
