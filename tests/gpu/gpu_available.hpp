#pragma once
// Shared by the GPU tests: whether this process can use a CUDA device. Without one the
// tests exit with kSkip (77), which ctest reports as skipped (SKIP_RETURN_CODE), never as
// passed. cudaGetDeviceCount fails without a driver (error 35) and then leaves the count
// unwritten, so its return code is what counts.
#include <cuda_runtime.h>

#include <string>

namespace dualnet::gpu_test {

constexpr int kSkip = 77;

// "" when at least `needed` devices are usable, else why not.
inline std::string why_no_gpu(int needed = 1) {
  int count = -1;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess)
    return std::string("no usable CUDA device: cudaGetDeviceCount returned ") + cudaGetErrorName(rc) + " (" +
           std::to_string(static_cast<int>(rc)) + "): " + cudaGetErrorString(rc);
  if (count < needed)
    return "needs " + std::to_string(needed) + " CUDA device(s) on this host, found " + std::to_string(count);
  return "";
}

}  // namespace dualnet::gpu_test
