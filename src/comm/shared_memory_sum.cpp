#include "comm/shared_memory_sum.hpp"

#include <exception>
#include <string>

#include "comm/mpi_check.hpp"
#include "util/error.hpp"

namespace dualnet {

SharedMemorySum::SharedMemorySum(MPI_Comm comm, std::int64_t length) : comm_(comm), length_(length) {
  if (!Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible)
    DUALNET_FAIL("shared-memory sum: the buffers are device memory");
  DUALNET_MPI_CHECK(MPI_Comm_size(comm_, &ranks_));
  DUALNET_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  const MPI_Aint bytes = static_cast<MPI_Aint>(2 * length_ * static_cast<std::int64_t>(sizeof(std::int64_t)));
  std::int64_t* mine = nullptr;
  // The default (contiguous) placement: rank r's part follows rank r - 1's, so one View
  // spans every slot.
  DUALNET_MPI_CHECK(
      MPI_Win_allocate_shared(bytes, sizeof(std::int64_t), MPI_INFO_NULL, comm_, static_cast<void*>(&mine), &win_));
  for (int r = 0; r < ranks_; ++r) {
    MPI_Aint size = 0;
    int unit = 0;
    std::int64_t* base = nullptr;
    DUALNET_MPI_CHECK(MPI_Win_shared_query(win_, r, &size, &unit, static_cast<void*>(&base)));
    if (r == 0) all_ = base;
    if (base != all_ + 2 * length_ * r || size != bytes)
      DUALNET_FAIL("shared-memory sum: the window of rank " + std::to_string(r) + " is not where MPI promised");
  }
  // One passive epoch for the window's life: the ranks order their accesses with
  // MPI_Win_sync and the barrier (MPI's unified memory model).
  DUALNET_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_));
}

SharedMemorySum::~SharedMemorySum() {
  // Freeing is collective: a rank that leaves through an exception must not wait for the
  // others there (MPI_Finalize releases the window).
  if (win_ == MPI_WIN_NULL || std::uncaught_exceptions() > 0) return;
  MPI_Win_unlock_all(win_);
  MPI_Win_free(&win_);
}

void SharedMemorySum::publish(const View1<std::int64_t>& buf) {
  if (buf.extent(0) != static_cast<std::size_t>(length_))
    DUALNET_FAIL("shared-memory sum: a buffer of " + std::to_string(buf.extent(0)) + " entries, not " +
                 std::to_string(length_));
  slot_ = 1 - slot_;
  const Kokkos::View<std::int64_t*, MemSpace, Kokkos::MemoryUnmanaged> mine(all_ + (2 * rank_ + slot_) * length_,
                                                                            length_);
  Kokkos::deep_copy(mine, buf);  // waits for the kernels that wrote buf
}

void SharedMemorySum::collect(const View1<std::int64_t>& buf) {
  // Our slot's stores are visible to the others, and theirs to us, once all passed the barrier.
  DUALNET_MPI_CHECK(MPI_Win_sync(win_));
  DUALNET_MPI_CHECK(MPI_Barrier(comm_));
  DUALNET_MPI_CHECK(MPI_Win_sync(win_));
  const Kokkos::View<const std::int64_t**, Kokkos::LayoutRight, MemSpace, Kokkos::MemoryUnmanaged> slots(
      all_, 2 * ranks_, length_);  // row 2 r + s: rank r's slot s
  const int ranks = ranks_, slot = slot_;
  const auto out = buf;
  Kokkos::parallel_for(
      "comm::shared_memory_sum", range(length_), KOKKOS_LAMBDA(const std::int64_t i) {
        std::uint64_t s = 0;  // wraps as MPI's sum does, never undefined
        for (int r = 0; r < ranks; ++r) s += static_cast<std::uint64_t>(slots(2 * r + slot, i));
        out(i) = static_cast<std::int64_t>(s);
      });
}

}  // namespace dualnet
