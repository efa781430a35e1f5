#pragma once
// What a run will allocate, per rank, so an impossible configuration is refused before it
// starts (and before it takes the node down with it). An upper bound of a rank's peak
// resident memory: every buffer is sized by the same functions the allocating code uses
// (SampleBatch::bytes, Activations::bytes, Evaluator::chunk_for / workspace_bytes /
// finish_bytes / result_bytes), plus the host copies rank 0 makes for checkpoints and metrics
// rows and the in-memory images of those files; tests/memory checks the Views against the
// allocations and the whole against the measured peak RSS of real runs.
#include <cstdint>

#include "config/config.hpp"

namespace dualnet {

// Fixed allowance for what no buffer of ours accounts for: the MPI, Kokkos, HDF5 and C++
// runtimes, code, stacks, allocator slack. Measured: the peak RSS of a tiny run (depth=2
// hid=1 batch=2 samples_per_pass=64 epochs=1) is 28 MB at 1 rank started without mpirun,
// 26 MB with mpirun -n 1, 24-26 MB per rank at 2 (Open MPI 4.1.4, Kokkos 3.4 Serial, HDF5
// 1.10.8, Debian 12); 48 MiB leaves a margin for other MPI builds and allocator slack.
constexpr double kRuntimeBytes = 48.0 * 1024 * 1024;

// The parts of the estimate, in bytes per rank. Floating point: an absurd config gives a huge
// (or infinite) value, never an overflow.
struct MemoryEstimate {
  double runtime = 0.0;     // kRuntimeBytes
  double persistent = 0.0;  // Views the Trainer and its Evaluator hold all run (+ a resumed checkpoint)
  double transient = 0.0;   // the largest of the short-lived peaks on top (metrics file, evaluation,
                            // checkpoint, MPI reductions, resume), as rank 0 sees them
  double total() const { return runtime + persistent + transient; }
};

MemoryEstimate estimate_memory(const Config& cfg, int world_size);
// estimate_memory(...).total(), saturated to the int64 range.
std::int64_t estimate_memory_bytes(const Config& cfg, int world_size);
// Memory this node can give (MemAvailable), or 0 when unknown.
std::int64_t available_memory_bytes();

}  // namespace dualnet
