#!/usr/bin/env bash
# Configure and build dualnet's CUDA configuration: the whole project through nvcc_wrapper
# against the CUDA Kokkos of cmake/build-kokkos-cuda.sh, with the NCCL reducer, for H100
# (sm_90 code, plus the sm_80 code and PTX that Kokkos's AMPERE80 arch adds). CI, the GPU
# bundle (tests/gpu/make-bundle.sh) and people use this one recipe. docs/gpu.md explains it.
#
# Usage:  cmake/build-cuda.sh [BUILD_DIR] [-- extra cmake configure args]
#   BUILD_DIR               default: build-cuda (relative to the repository root)
# Environment (all optional):
#   KOKKOS_CUDA_PREFIX      the CUDA Kokkos install (default /opt/kokkos-cuda); built first
#                           with cmake/build-kokkos-cuda.sh when it is missing
#   CUDA_ROOT               CUDA toolkit with NCCL (default /usr/local/cuda)
#   DUALNET_CUDA_ARCH_FLAGS nvcc flags added to every compile through NVCC_APPEND_FLAGS
#                           (default "-gencode arch=compute_90,code=sm_90"; "" for none)
#   DUALNET_CUDA_JOBS       parallel compile jobs (default 2)
#   DUALNET_CUDA_TARGETS    targets to build (default: dualnet and the GPU tests;
#                           "all" builds every target, the CPU unit tests too)
#   DUALNET_CUDA_PTXAS_LOG  1 (default): compile with -Xptxas -v and keep each object's
#                           ptxas report in OBJECT.ptxas.log (cmake/ptxas-log.sh), which
#                           tests/gpu/check_spills.py reads; 0: neither
# Compile and link only: the binaries need an NVIDIA GPU and driver to run.
set -euo pipefail

log() { printf '[build-cuda] %s\n' "$*"; }
die() { printf '[build-cuda] ERROR: %s\n' "$*" >&2; exit 1; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-build-cuda}"
[[ $# -gt 0 ]] && shift
if [[ "${1:-}" == "--" ]]; then shift; fi
[[ "${build_dir}" == /* ]] || build_dir="${repo}/${build_dir}"

prefix="${KOKKOS_CUDA_PREFIX:-/opt/kokkos-cuda}"
export CUDA_ROOT="${CUDA_ROOT:-/usr/local/cuda}"  # nvcc_wrapper runs ${CUDA_ROOT}/bin/nvcc
arch_flags="${DUALNET_CUDA_ARCH_FLAGS-"-gencode arch=compute_90,code=sm_90"}"
jobs="${DUALNET_CUDA_JOBS:-2}"
targets="${DUALNET_CUDA_TARGETS:-dualnet dualnet_gpu_tests}"
ptxas_log="${DUALNET_CUDA_PTXAS_LOG:-1}"

[[ -x "${CUDA_ROOT}/bin/nvcc" ]] || die "nvcc not found at ${CUDA_ROOT}/bin/nvcc (set CUDA_ROOT)"
if [[ ! -x "${prefix}/bin/nvcc_wrapper" || ! -f "${prefix}/share/kokkos-cuda-build.stamp" ]]; then
  log "no CUDA Kokkos in ${prefix}: building it first"
  CUDA_ROOT="${CUDA_ROOT}" "${repo}/cmake/build-kokkos-cuda.sh" "${prefix}"
fi

# NVCC_APPEND_FLAGS reaches nvcc through the compiler launcher, so the build needs no
# exported environment; nvcc_wrapper rejects a second -arch in CMAKE_CXX_FLAGS. With the
# ptxas report, cmake/ptxas-log.sh runs each compile and moves the report out of the build
# output into OBJECT.ptxas.log (for tests/gpu/check_spills.py).
nvcc_flags="${arch_flags}"
launcher="env;CUDA_ROOT=${CUDA_ROOT}"
if [[ "${ptxas_log}" == 1 ]]; then
  nvcc_flags="${nvcc_flags:+${nvcc_flags} }-Xptxas -v"
  launcher="${repo}/cmake/ptxas-log.sh;${launcher}"
fi
[[ -n "${nvcc_flags}" ]] && launcher="${launcher};NVCC_APPEND_FLAGS=${nvcc_flags}"

t0="$(date +%s)"
log "configuring ${build_dir}"
cmake -S "${repo}" -B "${build_dir}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="${prefix}/bin/nvcc_wrapper" \
  -DKokkos_ROOT="${prefix}" \
  -DCUDAToolkit_ROOT="${CUDA_ROOT}" \
  -DDUALNET_ENABLE_NCCL=ON \
  -DDUALNET_NATIVE=OFF \
  "-DCMAKE_CXX_COMPILER_LAUNCHER=${launcher}" \
  "$@"
t1="$(date +%s)"
log "configured in $((t1 - t0)) s; building: ${targets} (${jobs} jobs)"
if [[ "${targets}" == all ]]; then
  cmake --build "${build_dir}" --parallel "${jobs}"
else
  # shellcheck disable=SC2086  # a list of target names
  cmake --build "${build_dir}" --parallel "${jobs}" --target ${targets}
fi
t2="$(date +%s)"
log "built in $((t2 - t1)) s (configure + build $((t2 - t0)) s)"
