#!/usr/bin/env bash
# Build and install a threaded host Kokkos (Serial + OpenMP backends) for dualnet.
#
# Debian bookworm packages a Serial-only Kokkos 3.4.1 (libtrilinos-kokkos-dev), so no
# parallel backend would run outside a GPU. By default this script builds the same Kokkos
# 3.4.1 from Debian's `trilinos` source package (as cmake/build-kokkos-cuda.sh does, sharing
# its download through cmake/kokkos-build-lib.sh) with the OpenMP backend. With --source, it
# builds an upstream Kokkos release tarball instead (CI: Kokkos 4.6.01, what clusters have).
# Static libraries, Release, C++17; OpenMP is then Kokkos's default execution space.
#
# Usage:  cmake/build-kokkos-openmp.sh [--source TARBALL] [PREFIX]
#   --source TARBALL       an upstream release tarball (kokkos-X.Y.ZZ.tar.gz) instead of
#                          Debian's 3.4.1; it must exist (callers that treat a missing one as
#                          "skip" check first)
#   PREFIX                 install prefix; default $KOKKOS_OPENMP_PREFIX, else
#                          /opt/kokkos-openmp (Debian's 3.4.1) or /opt/kokkos-X.Y.ZZ-openmp
# Environment (all optional):
#   KOKKOS_OPENMP_FORCE=1  rebuild even if PREFIX already holds a complete install of this source
#   KOKKOS_OPENMP_JOBS     parallel build jobs (default: nproc)
#   KOKKOS_OPENMP_WORKDIR  work directory to use and keep (default: a temporary one)
#   KOKKOS_OPENMP_KEEP_WORKDIR=1
#                          keep the temporary work directory
#   DEBIAN_MIRROR, DUALNET_KOKKOS_SOURCE_CACHE
#                          the Debian download and its cache (cmake/kokkos-build-lib.sh)
#
# Needs: root only when packages are missing or PREFIX is not writable; for Debian's 3.4.1,
# network access to the Debian mirror unless the source cache holds it. /etc/apt is never
# modified. Then: cmake -DKokkos_ROOT=PREFIX, and run with OMP_NUM_THREADS=N OMP_PROC_BIND=false
# (or spread/close; unset, Kokkos prints a warning at start).
set -euo pipefail

readonly STAMP_NAME="share/kokkos-openmp-build.stamp"
KB_TAG="build-kokkos-openmp"
KB_ENV=KOKKOS_OPENMP
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cmake/kokkos-build-lib.sh
source "${script_dir}/kokkos-build-lib.sh"

tarball=""
if [[ "${1:-}" == "--source" ]]; then
  [[ $# -ge 2 ]] || die "--source needs a tarball"
  tarball="$2"
  shift 2
  [[ -f "${tarball}" ]] || die "no Kokkos tarball at ${tarball}"
  tarball="$(cd "$(dirname "${tarball}")" && pwd)/$(basename "${tarball}")"
fi
[[ $# -le 1 ]] || die "usage: $0 [--source TARBALL] [PREFIX]"
jobs="${KOKKOS_OPENMP_JOBS:-$(nproc)}"

# The source's identity (a stamp line), before anything is built.
if [[ -n "${tarball}" ]]; then
  name="$(basename "${tarball}")"
  source_line="source ${name} sha256 $(sha256sum "${tarball}" | cut -d' ' -f1)"
  default_prefix="/opt/${name%%.tar*}-openmp"
else
  source_line="source Debian ${KB_SOURCE_PACKAGE} (${KB_SOURCE_SUITE})"
  default_prefix="${KOKKOS_OPENMP_PREFIX:-/opt/kokkos-openmp}"
fi
prefix="${1:-${default_prefix}}"
[[ "${prefix}" == /* ]] || prefix="$(pwd)/${prefix}"

KB_STAMP_MATCH="${source_line}"
kb_report_existing "${prefix}" "${STAMP_NAME}"

log "installing Kokkos (Serial + OpenMP) into ${prefix}"
start_time="$(date +%s)"
kb_make_workdir kokkos-openmp
if [[ -n "${tarball}" ]]; then
  kb_require_commands cmake make g++ gzip
  log "extracting ${name}"
  mkdir -p "${workdir}/extract"
  tar -xf "${tarball}" -C "${workdir}/extract"
  # Release tarballs hold the tree at the top (4.6.01) or in one directory.
  src_dir="${workdir}/extract"
  [[ -f "${src_dir}/CMakeLists.txt" ]] || src_dir="$(dirname "$(compgen -G "${workdir}/extract/*/CMakeLists.txt" | head -n 1)")"
  grep -q '^project(Kokkos' "${src_dir}/CMakeLists.txt" 2>/dev/null || die "${tarball} holds no Kokkos source tree"
  origin="${name}"
else
  src_dir="${workdir}/kokkos"
  kb_debian_kokkos_source "${src_dir}"
  origin="${kokkos_origin}"
fi
version="$(kb_version_of "${src_dir}")"
log "Kokkos ${version} from ${origin}"

build_dir="${workdir}/build"
rm -f "${prefix}/${STAMP_NAME}" # a forced rebuild is incomplete until the end
log "configuring (Serial + OpenMP, static, Release)"
kb_build_install "${src_dir}" "${build_dir}" "${prefix}" "${jobs}" -DKokkos_ENABLE_OPENMP=ON

kb_install_files_present "${prefix}" || die "install in ${prefix} is incomplete"
kb_write_stamp "${prefix}" "${STAMP_NAME}" \
  "kokkos ${version} from ${origin}" \
  "${source_line}" \
  "backends Serial OpenMP; $(g++ --version | head -n 1)"

end_time="$(date +%s)"
log "done in $((end_time - start_time)) s; install size $(du -sh "${prefix}" | cut -f1)"
log "consumers: cmake -DKokkos_ROOT=${prefix}; run with OMP_NUM_THREADS=N OMP_PROC_BIND=false"
