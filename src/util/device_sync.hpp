#pragma once
// dualnet's explicit waits for the device (fences), named and counted on every build, so a
// host build counts the waits that a GPU build of the same code makes; tests/budget holds
// the training step and the evaluation to their budget with it (docs/gpu.md#step-budget).
// A Kokkos deep_copy (the MPI reducer's copies through host memory, results for I/O) also
// waits; the budget test sees those through Kokkos Tools.
#include <cstdint>

namespace dualnet {

void wait_for_device(const char* why);
// The waits so far in this process.
std::int64_t host_waits();

}  // namespace dualnet
