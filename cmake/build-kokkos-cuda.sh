#!/usr/bin/env bash
# Build and install a CUDA-enabled Kokkos 3.4.1 (Serial + Cuda backends) for dualnet.
#
# Debian bookworm only packages a Serial-only Kokkos 3.4.1 (libtrilinos-kokkos-dev).  This
# script fetches the same Kokkos sources from Debian's `trilinos` source package
# (packages/kokkos inside trilinos 13.2.0), applies cmake/kokkos-3.4.1-cuda13.patch so that
# it builds with the CUDA 13 toolkit, and installs a static Kokkos plus nvcc_wrapper.
#
# Usage:  cmake/build-kokkos-cuda.sh [PREFIX]
#   PREFIX                 install prefix; default $KOKKOS_CUDA_PREFIX, else /opt/kokkos-cuda
# Environment (all optional):
#   CUDA_ROOT              CUDA toolkit root (default /usr/local/cuda)
#   KOKKOS_CUDA_APPEND_FLAGS
#                          extra nvcc flags, passed as NVCC_APPEND_FLAGS while building Kokkos.
#                          Default "-gencode arch=compute_90,code=sm_90" adds native H100 code,
#                          because Kokkos 3.4 has no Hopper arch option (Kokkos_ARCH_AMPERE80
#                          gives sm_80 code + compute_80 PTX).  Set it to "" to skip sm_90.
#   KOKKOS_CUDA_FORCE=1    rebuild even if PREFIX already holds a complete install
#   KOKKOS_CUDA_KEEP_WORKDIR=1
#                          keep the temporary download/build directory
#   KOKKOS_CUDA_JOBS       parallel build jobs (default: nproc)
#   DEBIAN_MIRROR          Debian mirror URL (default: the one in /etc/apt, else deb.debian.org)
#   DUALNET_KOKKOS_SOURCE_CACHE
#                          the extracted sources are kept there for cmake/build-kokkos-openmp.sh
#                          (and a rebuild): cmake/kokkos-build-lib.sh
#
# Needs: root only when packages are missing (it apt-get installs them) or PREFIX is not
# writable; network access to the Debian mirror only.  /etc/apt is never modified: the
# source index is fetched into a private apt state directory.
set -euo pipefail

readonly STAMP_NAME="share/kokkos-cuda-build.stamp"
KB_TAG="build-kokkos-cuda"
KB_ENV=KOKKOS_CUDA
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cmake/kokkos-build-lib.sh
source "${script_dir}/kokkos-build-lib.sh"
readonly KOKKOS_VERSION="${KB_DEBIAN_KOKKOS_VERSION}"
patch_file="${script_dir}/kokkos-${KOKKOS_VERSION}-cuda13.patch"

prefix="${1:-${KOKKOS_CUDA_PREFIX:-/opt/kokkos-cuda}}"
[[ "${prefix}" == /* ]] || prefix="$(pwd)/${prefix}"
cuda_root="${CUDA_ROOT:-/usr/local/cuda}"
append_flags="${KOKKOS_CUDA_APPEND_FLAGS-"-gencode arch=compute_90,code=sm_90"}"
jobs="${KOKKOS_CUDA_JOBS:-$(nproc)}"

# --- 0. Already installed? ----------------------------------------------------------------
install_files_present() { kb_install_files_present "${prefix}" bin/nvcc_wrapper; }
kb_report_existing "${prefix}" "${STAMP_NAME}" bin/nvcc_wrapper

log "installing CUDA-enabled Kokkos ${KOKKOS_VERSION} into ${prefix}"
start_time="$(date +%s)"

# --- 1. Prerequisites ---------------------------------------------------------------------
[[ -f "${patch_file}" ]] || die "patch file not found: ${patch_file}"
[[ -x "${cuda_root}/bin/nvcc" ]] || die "nvcc not found at ${cuda_root}/bin/nvcc (set CUDA_ROOT)"
kb_require_commands patch

# --- 2.-4. Kokkos 3.4.1 from Debian's trilinos source package (cmake/kokkos-build-lib.sh) ---
kb_make_workdir kokkos-cuda
src_dir="${workdir}/kokkos"
kb_debian_kokkos_source "${src_dir}"

# --- 5. Patch for CUDA 13 ----------------------------------------------------------------------
log "applying $(basename "${patch_file}")"
(cd "${src_dir}" && patch -p1 --forward --batch <"${patch_file}")

# --- 6. Configure, build, install --------------------------------------------------------------
build_dir="${workdir}/build"
export CUDA_ROOT="${cuda_root}"           # nvcc_wrapper runs ${CUDA_ROOT}/bin/nvcc
export PATH="${cuda_root}/bin:${PATH}"
export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:+${NVCC_APPEND_FLAGS} }${append_flags}"
log "NVCC_APPEND_FLAGS='${NVCC_APPEND_FLAGS}'"

# Build with the (patched) nvcc_wrapper at its final place: Kokkos records the compiler
# path in its installed CMake config (Kokkos_CXX_COMPILER, used by kokkos_launch_compiler),
# and the temporary source tree is deleted afterwards.  `cmake --install` re-copies it.
rm -f "${prefix}/${STAMP_NAME}" # a forced rebuild is incomplete until the end
mkdir -p "${prefix}/bin"
install -m 755 "${src_dir}/bin/nvcc_wrapper" "${prefix}/bin/nvcc_wrapper"

log "configuring (Serial + Cuda, Kokkos_ARCH_AMPERE80, static, Release)"
kb_build_install "${src_dir}" "${build_dir}" "${prefix}" "${jobs}" \
  -DCMAKE_CXX_COMPILER="${prefix}/bin/nvcc_wrapper" \
  -DCUDAToolkit_ROOT="${cuda_root}" \
  -DKokkos_ENABLE_CUDA=ON \
  -DKokkos_ENABLE_CUDA_LAMBDA=ON \
  -DKokkos_ARCH_AMPERE80=ON

# --- 7. Check and stamp --------------------------------------------------------------------
install_files_present || die "install in ${prefix} is incomplete"
cuda_version="$("${cuda_root}/bin/nvcc" --version | sed -nE 's/.*release ([0-9.]+).*/\1/p')"
kb_write_stamp "${prefix}" "${STAMP_NAME}" \
  "kokkos ${KOKKOS_VERSION} from ${kokkos_origin}" \
  "patch $(sha256sum "${patch_file}" | cut -d' ' -f1)" \
  "cuda ${cuda_version} (${cuda_root})" \
  "backends Serial Cuda; arch AMPERE80; NVCC_APPEND_FLAGS=${NVCC_APPEND_FLAGS}"

end_time="$(date +%s)"
log "done in $((end_time - start_time)) s; install size $(du -sh "${prefix}" | cut -f1)"
log "consumers: export CUDA_ROOT=${cuda_root} (or put ${cuda_root}/bin on PATH) and configure with"
log "  -DCMAKE_CXX_COMPILER=${prefix}/bin/nvcc_wrapper -DKokkos_ROOT=${prefix}"
