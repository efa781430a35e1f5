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
  if (picked) {
    note_ = "the command line picks the GPU";
  } else if (rc != cudaSuccess || devices < 1) {
    note_ = std::string("no CUDA device: ") + (rc != cudaSuccess ? cudaGetErrorString(rc) : "none found");
  } else {
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
