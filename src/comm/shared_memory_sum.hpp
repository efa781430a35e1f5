#pragma once
// The sum of an int64 buffer over ranks that share one host, through an MPI-3 shared-memory
// window instead of MPI_Allreduce. Why: Open MPI moves a message above its eager limit
// between two processes with cross-memory attach (a system call that copies from the other
// process); on a virtual machine the gradient's 53 KB took 15 us that way, a quarter of a
// 2-rank training step's spare time. Here each rank copies its buffer into its own slot of
// one window, the ranks meet at a barrier, and each adds every rank's slot, in rank order,
// in one kernel (6-8 us). The sums are of integers (fixed point), so they are the bits
// MPI_Allreduce gives.
// Each rank's part of the window holds two slots that alternate from one sum to the next:
// a rank can write a slot again only two sums later, after the barrier of the sum between,
// which every rank passes only once it has read that slot. So one barrier per sum suffices.
// Host-accessible memory spaces only (the window is host memory).
#include <mpi.h>

#include <cstdint>

#include "util/kokkos_compat.hpp"

namespace dualnet {

class SharedMemorySum {
 public:
  // Collective over comm, whose ranks must share one host; buffers of `length` entries.
  SharedMemorySum(MPI_Comm comm, std::int64_t length);
  ~SharedMemorySum();
  SharedMemorySum(const SharedMemorySum&) = delete;
  SharedMemorySum& operator=(const SharedMemorySum&) = delete;

  std::int64_t length() const { return length_; }
  // Copies buf (length() entries) into this rank's next slot; buf is not touched after.
  void publish(const View1<std::int64_t>& buf);
  // Collective: waits for every rank's publish, then buf = the sum of the slots just published.
  void collect(const View1<std::int64_t>& buf);

 private:
  MPI_Comm comm_;
  MPI_Win win_ = MPI_WIN_NULL;
  std::int64_t* all_ = nullptr;  // rank 0's part; rank r's starts 2 * length_ entries later per rank
  std::int64_t length_ = 0;
  int ranks_ = 0, rank_ = 0, slot_ = 1;  // slot_: the slot of the last publish (0 or 1)
};

}  // namespace dualnet
