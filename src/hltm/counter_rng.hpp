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

// Philox4x32-10 on several counters at once: U is std::uint64_t (one counter) or a vector
// of 64-bit lanes (one counter per lane), every word a 32-bit value in its 64-bit lane.
// mul(a, m) is the 64-bit product of a's 32-bit lanes and m (on AVX2 one vpmuludq: GCC
// multiplies vectors of 64-bit lanes with three). Same bits as philox().
template <class U, class Mul>
KOKKOS_FORCEINLINE_FUNCTION void philox_lanes(std::uint64_t seed, U c0, U c1, U c2, U c3, U out[4], const Mul& mul) {
  const std::uint64_t lo32 = 0xFFFFFFFFu;
  std::uint64_t k0 = seed & lo32, k1 = seed >> 32;
  for (int round = 0; round < 10; ++round) {
    const U p0 = mul(c0, static_cast<std::uint64_t>(PHILOX_M4x32_0));
    const U p1 = mul(c2, static_cast<std::uint64_t>(PHILOX_M4x32_1));
    c0 = (p1 >> 32) ^ c1 ^ k0;
    c1 = p1 & lo32;
    c2 = (p0 >> 32) ^ c3 ^ k1;
    c3 = p0 & lo32;
    k0 = (k0 + PHILOX_W32_0) & lo32;
    k1 = (k1 + PHILOX_W32_1) & lo32;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// Uniform in the open interval (0, 1).
KOKKOS_INLINE_FUNCTION double to_unit(std::uint32_t x) {
  return (static_cast<double>(x) + 0.5) * 2.3283064365386963e-10;
}

}  // namespace dualnet
