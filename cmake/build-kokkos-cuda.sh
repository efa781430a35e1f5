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
#
# Needs: root only when packages are missing (it apt-get installs them) or PREFIX is not
# writable; network access to the Debian mirror only.  /etc/apt is never modified: the
# source index is fetched into a private apt state directory.
set -euo pipefail

readonly KOKKOS_VERSION="3.4.1"
readonly SOURCE_PACKAGE="trilinos"
readonly SOURCE_SUITE="bookworm"     # trilinos 13.2.0 -> Kokkos 3.4.1
readonly STAMP_NAME="share/kokkos-cuda-build.stamp"

log() { printf '[build-kokkos-cuda] %s\n' "$*"; }
die() { printf '[build-kokkos-cuda] ERROR: %s\n' "$*" >&2; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
patch_file="${script_dir}/kokkos-${KOKKOS_VERSION}-cuda13.patch"

prefix="${1:-${KOKKOS_CUDA_PREFIX:-/opt/kokkos-cuda}}"
[[ "${prefix}" == /* ]] || prefix="$(pwd)/${prefix}"
cuda_root="${CUDA_ROOT:-/usr/local/cuda}"
append_flags="${KOKKOS_CUDA_APPEND_FLAGS-"-gencode arch=compute_90,code=sm_90"}"
jobs="${KOKKOS_CUDA_JOBS:-$(nproc)}"

# --- 0. Already installed? ----------------------------------------------------------------
install_files_present() {
  [[ -x "${prefix}/bin/nvcc_wrapper" ]] &&
    compgen -G "${prefix}/lib*/cmake/Kokkos/KokkosConfig.cmake" >/dev/null &&
    compgen -G "${prefix}/lib*/libkokkoscore.a" >/dev/null &&
    [[ -f "${prefix}/include/KokkosCore_config.h" ]]
}
# The stamp is written last, so a build that died half-way is not taken as complete.
install_is_complete() { [[ -f "${prefix}/${STAMP_NAME}" ]] && install_files_present; }

if [[ "${KOKKOS_CUDA_FORCE:-0}" != 1 ]] && install_is_complete; then
  log "complete CUDA Kokkos install already present in ${prefix}:"
  sed 's/^/    /' "${prefix}/${STAMP_NAME}"
  log "nothing to do (set KOKKOS_CUDA_FORCE=1 to rebuild)"
  exit 0
fi

log "installing CUDA-enabled Kokkos ${KOKKOS_VERSION} into ${prefix}"
start_time="$(date +%s)"

# --- 1. Prerequisites ---------------------------------------------------------------------
[[ -f "${patch_file}" ]] || die "patch file not found: ${patch_file}"
[[ -x "${cuda_root}/bin/nvcc" ]] || die "nvcc not found at ${cuda_root}/bin/nvcc (set CUDA_ROOT)"

missing_pkgs=()
command -v patch >/dev/null || missing_pkgs+=(patch)
command -v cmake >/dev/null || missing_pkgs+=(cmake)
command -v make >/dev/null || missing_pkgs+=(make)
command -v g++ >/dev/null || missing_pkgs+=(g++)
command -v gzip >/dev/null || missing_pkgs+=(gzip)
[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing_pkgs+=(debian-archive-keyring)
if ((${#missing_pkgs[@]} > 0)); then
  [[ "$(id -u)" -eq 0 ]] || die "missing packages (${missing_pkgs[*]}); run as root or install them"
  log "installing missing packages: ${missing_pkgs[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing_pkgs[@]}"
fi

# --- 2. Private work directory and apt configuration ------------------------------------------
if [[ -n "${KOKKOS_CUDA_WORKDIR:-}" ]]; then
  workdir="${KOKKOS_CUDA_WORKDIR}"
  mkdir -p "${workdir}"
else
  workdir="$(mktemp -d "${TMPDIR:-/tmp}/kokkos-cuda.XXXXXX")"
fi
cleanup() {
  if [[ "${KOKKOS_CUDA_KEEP_WORKDIR:-0}" == 1 || -n "${KOKKOS_CUDA_WORKDIR:-}" ]]; then
    log "work directory kept: ${workdir}"
  else
    rm -rf "${workdir}"
  fi
}
trap cleanup EXIT
log "work directory: ${workdir}"

# Reuse the mirror this machine already uses (deb822 .sources first, then sources.list).
find_mirror() {
  local uri
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
    printf '%s\n' "${DEBIAN_MIRROR}"
    return
  fi
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' |
    grep -E '/debian/?$' | head -n 1 || true)"
  if [[ -z "${uri}" ]]; then
    uri="$(grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list 2>/dev/null |
      sed -E 's/\[[^]]*\]//' | awk '{ print $2 }' | grep -E '/debian/?$' | head -n 1 || true)"
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
mirror="$(find_mirror)"
log "Debian mirror: ${mirror} (suite ${SOURCE_SUITE}, deb-src only, private apt state)"

chmod 755 "${workdir}"
apt_dir="${workdir}/apt"
download_dir="${workdir}/download"
mkdir -p "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial" "${download_dir}"
# Let apt's unprivileged download user write the source files (keeps apt's sandbox on).
if id _apt >/dev/null 2>&1 && [[ "$(id -u)" -eq 0 ]]; then
  chown _apt "${download_dir}" "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial"
fi
printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
  "${mirror}" "${SOURCE_SUITE}" >"${apt_dir}/sources.list"

apt_private=(
  -o "Dir::Etc::SourceList=${apt_dir}/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=${apt_dir}/lists"
  -o "Dir::Cache=${apt_dir}/cache"
)

# --- 3. Download trilinos source (hashes checked by apt against the signed index) ---------
log "fetching the ${SOURCE_PACKAGE} source index"
apt-get "${apt_private[@]}" -q update
log "downloading ${SOURCE_PACKAGE} source package (~170 MB)"
(cd "${download_dir}" && apt-get "${apt_private[@]}" -q source --download-only "${SOURCE_PACKAGE}")

orig_tarball="$(compgen -G "${download_dir}/${SOURCE_PACKAGE}_*.orig.tar.*" | head -n 1 || true)"
[[ -n "${orig_tarball}" ]] || die "no ${SOURCE_PACKAGE} orig tarball was downloaded"
log "using $(basename "${orig_tarball}")"

# --- 4. Extract only packages/kokkos ---------------------------------------------------------
src_dir="${workdir}/kokkos"
top_dir="$( (tar -tf "${orig_tarball}" 2>/dev/null || true) | head -n 1 | cut -d/ -f1)"
[[ -n "${top_dir}" ]] || die "cannot read ${orig_tarball}"
log "extracting ${top_dir}/packages/kokkos"
mkdir -p "${src_dir}"
tar -xf "${orig_tarball}" -C "${src_dir}" --strip-components=3 "${top_dir}/packages/kokkos"
rm -rf "${download_dir}" # 170 MB we no longer need

found_version="$(sed -nE 's/^set\(Kokkos_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)\)$/\2/p' \
  "${src_dir}/CMakeLists.txt" | sed 's/^0*\([0-9]\)/\1/' | paste -sd.)"
[[ "${found_version}" == "${KOKKOS_VERSION}" ]] ||
  die "expected Kokkos ${KOKKOS_VERSION} in ${SOURCE_PACKAGE}, found '${found_version}'"

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
cmake -S "${src_dir}" -B "${build_dir}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="${prefix}" \
  -DCMAKE_CXX_COMPILER="${prefix}/bin/nvcc_wrapper" \
  -DCMAKE_CXX_STANDARD=17 \
  -DCMAKE_CXX_EXTENSIONS=OFF \
  -DBUILD_SHARED_LIBS=OFF \
  -DCUDAToolkit_ROOT="${cuda_root}" \
  -DKokkos_ENABLE_SERIAL=ON \
  -DKokkos_ENABLE_CUDA=ON \
  -DKokkos_ENABLE_CUDA_LAMBDA=ON \
  -DKokkos_ARCH_AMPERE80=ON \
  -DKokkos_ENABLE_TESTS=OFF \
  -DKokkos_ENABLE_EXAMPLES=OFF

log "building with ${jobs} jobs"
cmake --build "${build_dir}" --parallel "${jobs}"

log "installing into ${prefix}"
cmake --install "${build_dir}"

# --- 7. Check and stamp --------------------------------------------------------------------
install_files_present || die "install in ${prefix} is incomplete"
cuda_version="$("${cuda_root}/bin/nvcc" --version | sed -nE 's/.*release ([0-9.]+).*/\1/p')"
mkdir -p "$(dirname "${prefix}/${STAMP_NAME}")"
{
  printf 'kokkos %s from %s\n' "${KOKKOS_VERSION}" "$(basename "${orig_tarball}")"
  printf 'patch %s\n' "$(sha256sum "${patch_file}" | cut -d' ' -f1)"
  printf 'cuda %s (%s)\n' "${cuda_version}" "${cuda_root}"
  printf 'backends Serial Cuda; arch AMPERE80; NVCC_APPEND_FLAGS=%s\n' "${NVCC_APPEND_FLAGS}"
  printf 'built %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"${prefix}/${STAMP_NAME}"

end_time="$(date +%s)"
log "done in $((end_time - start_time)) s; install size $(du -sh "${prefix}" | cut -f1)"
log "consumers: export CUDA_ROOT=${cuda_root} (or put ${cuda_root}/bin on PATH) and configure with"
log "  -DCMAKE_CXX_COMPILER=${prefix}/bin/nvcc_wrapper -DKokkos_ROOT=${prefix}"
