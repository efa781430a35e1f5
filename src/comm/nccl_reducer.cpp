// NCCL reducer: in-place sums of device Views over all ranks (comm/nccl_reducer.hpp).
#include "comm/nccl_reducer.hpp"

#include <mpi.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "comm/cuda_check.hpp"
#include "comm/mpi_check.hpp"
#include "util/error.hpp"

namespace dualnet {

namespace {

// This rank's host, for messages.
[[maybe_unused]] std::string host_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  DUALNET_MPI_CHECK(MPI_Get_processor_name(name, &len));
  return std::string(name, strnlen(name, MPI_MAX_PROCESSOR_NAME));
}

}  // namespace

struct NcclReducer::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int ranks = 1;
};

NcclReducer::NcclReducer(const World& w) : s_(std::make_unique<State>()) {
#ifndef KOKKOS_ENABLE_CUDA
  (void)w;
  throw UsageError("reducer=nccl needs the Kokkos CUDA backend; this Kokkos has none");
#else
  if (!std::is_same<ExecSpace, Kokkos::Cuda>::value)
    throw UsageError("reducer=nccl needs Kokkos's default execution space to be Cuda (it is " +
                     std::string(ExecSpace::name()) + ")");
  // One GPU per rank: the i-th rank of a host (World::local_rank) uses GPU i of that host,
  // the one main() handed to Kokkos with --kokkos-device-id (comm/device_select.hpp).
  const std::string host = host_name();
  const int local_rank = w.local_rank, local_size = w.local_size;
  int devices = 0;
  DUALNET_CUDA_CHECK(cudaGetDeviceCount(&devices));
  std::string err;
  if (local_size > devices)
    err = std::to_string(local_size) + " ranks on host " + host + " but " + std::to_string(devices) +
          " GPU(s): the NCCL reducer needs one GPU per rank (start at most " + std::to_string(devices) +
          " ranks per host, or use reducer=mpi)";
  const int kokkos_device = Kokkos::Cuda().cuda_device();
  if (err.empty() && kokkos_device != local_rank)
    err = "Kokkos runs on GPU " + std::to_string(kokkos_device) + " but this rank is rank " +
          std::to_string(local_rank) + " on host " + host + ", so NCCL needs GPU " + std::to_string(local_rank) +
          ": remove --kokkos-device-id/--kokkos-num-devices (dualnet picks the GPU) or pass --kokkos-device-id=" +
          std::to_string(local_rank);
  agree(w, err, false);  // every rank throws if one rank cannot go on
  device_ = local_rank;
  DUALNET_CUDA_CHECK(cudaSetDevice(device_));
  s_->stream = Kokkos::Cuda().cuda_stream();
  s_->ranks = w.size;

  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (w.root()) DUALNET_NCCL_CHECK(ncclGetUniqueId(&id));
  DUALNET_MPI_CHECK(MPI_Bcast(&id, static_cast<int>(sizeof id), MPI_BYTE, 0, w.comm));
  DUALNET_MPI_CHECK(MPI_Barrier(w.comm));
  DUALNET_NCCL_CHECK(ncclCommInitRank(&s_->comm, w.size, id, w.rank));
#endif
}

NcclReducer::~NcclReducer() {
  if (s_ && s_->comm) ncclCommDestroy(s_->comm);  // no throwing from a destructor
}

std::string NcclReducer::name() const {
  int version = 0;
  ncclGetVersion(&version);
  return "nccl " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100) + " (GPU " + std::to_string(device_) + ")";
}

namespace {

template <class T>
void nccl_sum(ncclComm_t comm, cudaStream_t stream, const View1<T>& buf, ncclDataType_t type) {
  const size_t n = buf.extent(0);
  if (n == 0) return;
  // Stream-ordered, without a host wait: the kernels that wrote buf run on the same stream
  // (Kokkos's default instance) before the sum, and those that read it after; a host read
  // of buf goes through a deep_copy, which waits (docs/gpu.md#step-budget).
  DUALNET_NCCL_CHECK(ncclAllReduce(buf.data(), buf.data(), n, type, ncclSum, comm, stream));
  ncclResult_t async = ncclSuccess;
  DUALNET_NCCL_CHECK(ncclCommGetAsyncError(comm, &async));
  DUALNET_NCCL_CHECK(async);
}

}  // namespace

void NcclReducer::sum(const View1<std::int64_t>& buf) { nccl_sum(s_->comm, s_->stream, buf, ncclInt64); }
void NcclReducer::sum(const View1<double>& buf) { nccl_sum(s_->comm, s_->stream, buf, ncclFloat64); }
void NcclReducer::sum(const View1<float>& buf) { nccl_sum(s_->comm, s_->stream, buf, ncclFloat32); }

std::unique_ptr<Reducer> make_nccl_reducer(const World& w) { return std::make_unique<NcclReducer>(w); }

}  // namespace dualnet
