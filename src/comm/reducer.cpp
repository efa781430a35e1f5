#include "comm/reducer.hpp"

#include <mpi.h>

#include "comm/mpi_check.hpp"
#include "comm/shared_memory_sum.hpp"
#include "util/error.hpp"

namespace dualnet {

#ifdef DUALNET_HAVE_NCCL
std::unique_ptr<Reducer> make_nccl_reducer(const World& w);  // comm/nccl_reducer.cpp
#endif

namespace {

class SerialReducer final : public Reducer {
 public:
  void sum(const View1<std::int64_t>&) override {}
  void sum(const View1<double>&) override {}
  std::string name() const override { return "serial"; }
};

// MPI_Allreduce for every sum; with `shared`, the gradient's (start_sum/finish_sum, every
// step) through a shared-memory window instead (comm/shared_memory_sum.hpp).
class MpiReducer final : public Reducer {
 public:
  MpiReducer(const World& w, bool shared) : comm_(w.comm), shared_(shared) {}
  void sum(const View1<std::int64_t>& buf) override { reduce(buf, MPI_INT64_T); }
  void sum(const View1<double>& buf) override { reduce(buf, MPI_DOUBLE); }
  std::string name() const override { return shared_ ? "mpi, gradient through shared memory" : "mpi"; }

  void start_sum(const View1<std::int64_t>& buf) override {
    if (pending_ != MPI_REQUEST_NULL || pending_buf_.extent(0) > 0)
      DUALNET_FAIL("MpiReducer: start_sum while a sum is in flight");
    pending_buf_ = buf;
    if (buf.extent(0) == 0) return;
    if (shared_) {
      const std::int64_t n = static_cast<std::int64_t>(buf.extent(0));
      if (!window_ || window_->length() != n) {
        window_.reset();
        window_ = std::make_unique<SharedMemorySum>(comm_, n);
      }
      window_->publish(buf);
      return;
    }
    pending_host_ = Kokkos::create_mirror_view(buf);  // the same memory on host backends
    Kokkos::deep_copy(pending_host_, buf);
    DUALNET_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, pending_host_.data(), static_cast<int>(buf.extent(0)), MPI_INT64_T,
                                     MPI_SUM, comm_, &pending_));
  }
  void finish_sum() override {
    if (shared_ && pending_buf_.extent(0) > 0) {
      window_->collect(pending_buf_);
    } else {
      if (pending_ != MPI_REQUEST_NULL) DUALNET_MPI_CHECK(MPI_Wait(&pending_, MPI_STATUS_IGNORE));
      if (pending_buf_.extent(0) > 0) Kokkos::deep_copy(pending_buf_, pending_host_);
    }
    pending_buf_ = View1<std::int64_t>();
    pending_host_ = View1<std::int64_t>::HostMirror();
  }

 private:
  template <class T>
  void reduce(const View1<T>& buf, MPI_Datatype type) {
    if (buf.extent(0) == 0) return;
    auto host = Kokkos::create_mirror_view(buf);  // the same memory on host backends
    Kokkos::deep_copy(host, buf);
    DUALNET_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, host.data(), static_cast<int>(buf.extent(0)), type, MPI_SUM, comm_));
    Kokkos::deep_copy(buf, host);
  }
  MPI_Comm comm_;
  bool shared_;
  std::unique_ptr<SharedMemorySum> window_;  // made at the first gradient's sum, for its length
  MPI_Request pending_ = MPI_REQUEST_NULL;   // the sum between start_sum and finish_sum
  View1<std::int64_t> pending_buf_;
  View1<std::int64_t>::HostMirror pending_host_;
};

}  // namespace

std::unique_ptr<Reducer> make_reducer(const World& w, const std::string& choice) {
  const bool device_memory = !Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;
#ifdef DUALNET_HAVE_NCCL
  // auto: NCCL between GPUs; one rank has nothing to reduce.
  if (choice == "nccl" || (choice == "auto" && device_memory && w.size > 1)) return make_nccl_reducer(w);
#else
  if (choice == "nccl")
    throw UsageError(
        "reducer=nccl: this dualnet was built without NCCL (configure with DUALNET_ENABLE_NCCL=ON "
        "against a CUDA Kokkos)");
#endif
  const bool one_host = w.local_size == w.size;
  if (choice == "shm" && (!one_host || device_memory))
    throw UsageError(std::string("reducer=shm: ") +
                     (device_memory ? "the buffers are device memory (use reducer=nccl or mpi)"
                                    : "the ranks are on " + std::to_string(w.nodes) +
                                          " hosts; a shared-memory sum needs them all on one (use reducer=mpi)"));
  if (w.size == 1) return std::make_unique<SerialReducer>();
  return std::make_unique<MpiReducer>(w, choice == "shm" || (choice == "auto" && one_host && !device_memory));
}

}  // namespace dualnet
