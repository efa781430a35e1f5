#include "comm/reducer.hpp"

#include <mpi.h>

#include "comm/mpi_check.hpp"
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

class MpiReducer final : public Reducer {
 public:
  explicit MpiReducer(const World& w) : comm_(w.comm) {}
  void sum(const View1<std::int64_t>& buf) override { reduce(buf, MPI_INT64_T); }
  void sum(const View1<double>& buf) override { reduce(buf, MPI_DOUBLE); }
  std::string name() const override { return "mpi"; }

  void start_sum(const View1<std::int64_t>& buf) override {
    if (pending_ != MPI_REQUEST_NULL) DUALNET_FAIL("MpiReducer: start_sum while a sum is in flight");
    pending_buf_ = buf;
    pending_host_ = Kokkos::create_mirror_view(buf);  // the same memory on host backends
    Kokkos::deep_copy(pending_host_, buf);
    if (buf.extent(0) == 0) return;
    DUALNET_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, pending_host_.data(), static_cast<int>(buf.extent(0)), MPI_INT64_T,
                                     MPI_SUM, comm_, &pending_));
  }
  void finish_sum() override {
    if (pending_ != MPI_REQUEST_NULL) DUALNET_MPI_CHECK(MPI_Wait(&pending_, MPI_STATUS_IGNORE));
    if (pending_buf_.extent(0) > 0) Kokkos::deep_copy(pending_buf_, pending_host_);
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
  MPI_Request pending_ = MPI_REQUEST_NULL;  // the sum between start_sum and finish_sum
  View1<std::int64_t> pending_buf_;
  View1<std::int64_t>::HostMirror pending_host_;
};

}  // namespace

std::unique_ptr<Reducer> make_reducer(const World& w, const std::string& choice) {
#ifdef DUALNET_HAVE_NCCL
  // auto: NCCL between GPUs; one rank has nothing to reduce.
  const bool device_memory = !Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;
  if (choice == "nccl" || (choice == "auto" && device_memory && w.size > 1)) return make_nccl_reducer(w);
#else
  if (choice == "nccl")
    throw UsageError(
        "reducer=nccl: this dualnet was built without NCCL (configure with DUALNET_ENABLE_NCCL=ON "
        "against a CUDA Kokkos)");
#endif
  if (w.size == 1) return std::make_unique<SerialReducer>();
  return std::make_unique<MpiReducer>(w);
}

}  // namespace dualnet
