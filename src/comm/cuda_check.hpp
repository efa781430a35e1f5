#pragma once
// Check macros for the CUDA runtime and NCCL (CUDA builds only): a failed call throws
// RuntimeError "src/file.cpp:LINE: CUDA error <name> (<code>): <text> in <call>".
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "util/error.hpp"

#define DUALNET_CUDA_CHECK(call)                                                                                     \
  do {                                                                                                               \
    const cudaError_t e_ = (call);                                                                                   \
    if (e_ != cudaSuccess)                                                                                           \
      DUALNET_FAIL(std::string("CUDA error ") + cudaGetErrorName(e_) + " (" + std::to_string(static_cast<int>(e_)) + \
                   "): " + cudaGetErrorString(e_) + " in " + #call);                                                 \
  } while (0)

#define DUALNET_NCCL_CHECK(call)                                                                                       \
  do {                                                                                                                 \
    const ncclResult_t r_ = (call);                                                                                    \
    if (r_ != ncclSuccess)                                                                                             \
      DUALNET_FAIL(std::string("NCCL error ") + std::to_string(static_cast<int>(r_)) + ": " + ncclGetErrorString(r_) + \
                   " in " + #call);                                                                                    \
  } while (0)
