#pragma once
// The one place that knows the difference between Kokkos 3.4 (Debian) and Kokkos 4.x
// (clusters): math functions moved from Kokkos::Experimental to Kokkos in 4.0.
// Kernels call dualnet::kmath::*, never std:: math (CUDA lacks some of it on device).
#include <Kokkos_Core.hpp>
#include <cstdint>
#include <vector>

namespace dualnet {

using real = double;
using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;

// Row-major on every backend: a row (one sample, or one node) is contiguous, which the
// team-per-row kernels rely on, and results copy to the host as flat C arrays.
template <class T>
using View1 = Kokkos::View<T*, MemSpace>;
template <class T>
using View2 = Kokkos::View<T**, Kokkos::LayoutRight, MemSpace>;
template <class T>
using View3 = Kokkos::View<T***, Kokkos::LayoutRight, MemSpace>;

// A 1-D range over [0, n) of the default execution space, for named kernels.
inline Kokkos::RangePolicy<ExecSpace> range(std::int64_t n) { return Kokkos::RangePolicy<ExecSpace>(0, n); }

// `league` teams; threads of a team share one sample (a row) or one block of outputs.
// Kokkos::AUTO picks the team size: on a GPU a warp or more; on host backends one thread
// (Serial always; OpenMP too, one per core), so TeamThreadRange loops are plain loops.
// DUALNET_HOST_TEAM_SIZE=N (environment) asks host backends for teams of N threads (more than
// the backend has is a usage error), so that a threaded CPU build runs the team code -
// barriers, Kokkos::single, shared scratch - as a GPU does (CI's OpenMP job; docs/gpu.md).
// GPUs ignore it.
using TeamPolicy = Kokkos::TeamPolicy<ExecSpace>;
using Team = TeamPolicy::member_type;
int host_team_size();  // 0: Kokkos::AUTO (comm/device_select.cpp reads and checks the variable)
inline TeamPolicy teams(std::int64_t league) {
  const int size = host_team_size();
  return size > 0 ? TeamPolicy(static_cast<int>(league), size) : TeamPolicy(static_cast<int>(league), Kokkos::AUTO);
}

// DUALNET_SIMD asks the host compiler to vectorise a loop of independent iterations (the
// register tiles of the kernels). Needs -fopenmp-simd; empty on the device.
#if defined(__CUDA_ARCH__) || !defined(DUALNET_OPENMP_SIMD)
#define DUALNET_SIMD
#else
#define DUALNET_SIMD_PRAGMA(x) _Pragma(#x)
#define DUALNET_SIMD DUALNET_SIMD_PRAGMA(omp simd)
#endif

// A View's values as a host vector (row-major for the Views above): for I/O and printing.
template <class V>
std::vector<double> host_vector(const V& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}

namespace kmath {
#if KOKKOS_VERSION >= 40000
using Kokkos::ceil;
using Kokkos::exp;
using Kokkos::fabs;
using Kokkos::log;
using Kokkos::log1p;
using Kokkos::nearbyint;
using Kokkos::sqrt;
#else
using Kokkos::Experimental::ceil;
using Kokkos::Experimental::exp;
using Kokkos::Experimental::fabs;
using Kokkos::Experimental::log;
using Kokkos::Experimental::log1p;
using Kokkos::Experimental::nearbyint;
using Kokkos::Experimental::sqrt;
#endif
KOKKOS_INLINE_FUNCTION double relu(double x) { return x > 0.0 ? x : 0.0; }
KOKKOS_INLINE_FUNCTION double max(double a, double b) { return a > b ? a : b; }
KOKKOS_INLINE_FUNCTION double min(double a, double b) { return a < b ? a : b; }
// log(1 + e^x) without overflow.
KOKKOS_INLINE_FUNCTION double softplus(double x) { return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
KOKKOS_INLINE_FUNCTION double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
  const double e = exp(x);
  return e / (1.0 + e);
}
}  // namespace kmath

inline const char* execution_space_name() { return ExecSpace::name(); }

}  // namespace dualnet
