#include "comm/device_select.hpp"

#include <Kokkos_Core.hpp>
#include <cstdlib>
#include <cstring>

#ifdef KOKKOS_ENABLE_CUDA
#include <cuda_runtime.h>
#endif

namespace dualnet {

KokkosArgs::KokkosArgs(int argc, char* argv[], const World& w) {
  bool picked = std::getenv("KOKKOS_DEVICE_ID") != nullptr;
  for (int i = 0; i < argc; ++i) {
    strings_.emplace_back(argv[i]);
    for (const char* opt : {"--kokkos-device-id", "--kokkos-device", "--kokkos-num-devices", "--kokkos-ndevices",
                            "--kokkos-map-device-id-by"})
      if (std::strncmp(argv[i], opt, std::strlen(opt)) == 0) picked = true;
  }
#ifdef KOKKOS_ENABLE_CUDA
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);  // leaves `devices` unwritten on error
  if (rc != cudaSuccess || devices < 1) {
    no_device_ = std::string("this dualnet is a CUDA build, and no CUDA device is usable here (") +
                 (rc != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorName(rc) + ": " +
                                          cudaGetErrorString(rc)
                                    : std::string("no device found")) +
                 "); run it on a machine with an NVIDIA GPU and driver, or use a CPU build";
  } else if (!picked) {
    strings_.push_back("--kokkos-device-id=" + std::to_string(w.local_rank % devices));
  }
#else
  (void)w;
  (void)picked;
#endif
  for (auto& s : strings_) ptrs_.push_back(s.data());
  argc_ = static_cast<int>(strings_.size());
  ptrs_.push_back(nullptr);
}

}  // namespace dualnet
