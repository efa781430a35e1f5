#pragma once
// The NCCL reducer (CUDA builds with DUALNET_ENABLE_NCCL): ncclAllReduce(sum) in place on
// device Views, one GPU per rank. Set-up follows nccl-tests: the local rank (World::local_rank)
// picks the GPU, rank 0 makes the unique id, MPI_Bcast, MPI_Barrier, ncclCommInitRank.
// make_reducer() (comm/reducer.hpp) returns it for reducer=nccl, and for reducer=auto when
// Kokkos's memory space is CUDA memory.
#include <cstdint>
#include <memory>
#include <string>

#include "comm/reducer.hpp"
#include "comm/world.hpp"

namespace dualnet {

class NcclReducer final : public Reducer {
 public:
  // Collective over w.comm. Checks that Kokkos runs on GPU (local rank % GPUs on the host)
  // and that no two ranks of a host share it; throws RuntimeError naming the fix otherwise.
  explicit NcclReducer(const World& w);
  ~NcclReducer() override;
  NcclReducer(const NcclReducer&) = delete;
  NcclReducer& operator=(const NcclReducer&) = delete;

  void sum(const View1<std::int64_t>& buf) override;
  void sum(const View1<double>& buf) override;
  void sum(const View1<float>& buf);  // not used by the trainer; tests cover it
  std::string name() const override;

  int device() const { return device_; }

 private:
  struct State;
  std::unique_ptr<State> s_;
  int device_ = -1;
};

std::unique_ptr<Reducer> make_nccl_reducer(const World& w);

}  // namespace dualnet
