#pragma once
// Sums device buffers over all ranks, in place. One small interface, several transports:
// serial (one rank: nothing to do), MPI (through host memory; with every rank on one host,
// the gradient's sum through a shared-memory window, comm/shared_memory_sum.hpp), NCCL
// (device buffers, in comm/nccl_reducer.cpp when built with DUALNET_ENABLE_NCCL).
// Every sum dualnet makes (gradients, losses, evaluation statistics, covop checks) travels
// as int64 fixed point (util/fixed_point.hpp), so it is exact and independent of the
// transport's order. The double overload has no caller in dualnet; only
// tests/gpu/test_nccl_reducer.cpp uses it.
#include <memory>
#include <string>

#include "comm/world.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual void sum(const View1<std::int64_t>& buf) = 0;
  virtual void sum(const View1<double>& buf) = 0;
  // The same sum in two halves: between start_sum and finish_sum the caller may run work
  // that does not touch buf (the trainer samples the next step's batch there), so a rank
  // that is ahead does useful work instead of waiting. One sum in flight at a time.
  // Default: all of it in start_sum.
  virtual void start_sum(const View1<std::int64_t>& buf) { sum(buf); }
  virtual void finish_sum() {}
  virtual std::string name() const = 0;
};

// `choice` is the config key reducer: auto|mpi|nccl.
std::unique_ptr<Reducer> make_reducer(const World& w, const std::string& choice);

}  // namespace dualnet
