#pragma once
// Counter-based random numbers (Philox4x32-10 from Random123): a draw is a pure function
// of (seed, counter), so the data stream never depends on ranks, threads or backend.
// Counter word 1 names the stream: a view number (< 2^16) for samples, or a purpose below.
#include <Kokkos_Core.hpp>
#include <cstdint>

#if defined(__CUDACC__) && !defined(R123_CUDA_DEVICE)
// Random123 marks its functions __device__ only under nvcc; our kernels also run on host
// backends (Serial, OpenMP) of the same build, so make them callable from both.
#define R123_CUDA_DEVICE __host__ __device__
#endif
#include <Random123/philox.h>

namespace dualnet {

enum RngPurpose : std::uint32_t {
  kRngPolarity = 0x80000001u,
  kRngWeights = 0x80000002u,
};

struct Draw4 {
  std::uint32_t v[4];
};

KOKKOS_INLINE_FUNCTION Draw4 philox(std::uint64_t seed, std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                                    std::uint32_t c3) {
  r123::Philox4x32 gen;
  r123::Philox4x32::ctr_type ctr = {{c0, c1, c2, c3}};
  r123::Philox4x32::key_type key = {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  const auto r = gen(ctr, key);
  return Draw4{{r[0], r[1], r[2], r[3]}};
}

// Uniform in the open interval (0, 1).
KOKKOS_INLINE_FUNCTION double to_unit(std::uint32_t x) {
  return (static_cast<double>(x) + 0.5) * 2.3283064365386963e-10;
}

}  // namespace dualnet
