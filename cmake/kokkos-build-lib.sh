# shellcheck shell=bash
# What the Kokkos build scripts share (sourced by cmake/build-kokkos-cuda.sh and
# cmake/build-kokkos-openmp.sh, not run): logging, prerequisites, the work directory, the
# install check and stamp, and Kokkos 3.4.1's sources from Debian's trilinos source package.
#
# The caller sets, before sourcing:
#   KB_TAG    log prefix, e.g. build-kokkos-openmp
#   KB_ENV    prefix of the caller's environment knobs, e.g. KOKKOS_OPENMP: the
#             ${KB_ENV}_WORKDIR and ${KB_ENV}_KEEP_WORKDIR variables are read here
# Environment read here (all optional):
#   DEBIAN_MIRROR              Debian mirror URL (default: the one in /etc/apt, else deb.debian.org)
#   DUALNET_KOKKOS_SOURCE_CACHE
#                              where the extracted Kokkos 3.4.1 sources are kept, so that the
#                              CUDA and the OpenMP build download trilinos (~170 MB) once
#                              (default ${XDG_CACHE_HOME:-$HOME/.cache}/dualnet; "" for no cache)

readonly KB_DEBIAN_KOKKOS_VERSION="3.4.1"
readonly KB_SOURCE_PACKAGE="trilinos"
readonly KB_SOURCE_SUITE="bookworm" # trilinos 13.2.0 -> Kokkos 3.4.1

log() { printf '[%s] %s\n' "${KB_TAG}" "$*"; }
die() {
  printf '[%s] ERROR: %s\n' "${KB_TAG}" "$*" >&2
  exit 1
}

# kb_env NAME: the value of ${KB_ENV}_NAME, empty when unset.
kb_env() {
  local var="${KB_ENV}_$1"
  printf '%s' "${!var:-}"
}

# kb_require_commands CMD[:PACKAGE] ...: apt-get installs the packages of missing commands
# (root only); a FILE:PACKAGE with a leading / is a file that must exist.
kb_require_commands() {
  local spec name pkg missing=()
  for spec in "$@"; do
    name="${spec%%:*}"
    pkg="${spec#*:}"
    [[ "${pkg}" == "${spec}" ]] && pkg="${name}"
    if [[ "${name}" == /* ]]; then
      [[ -e "${name}" ]] || missing+=("${pkg}")
    else
      command -v "${name}" >/dev/null || missing+=("${pkg}")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  [[ "$(id -u)" -eq 0 ]] || die "missing packages (${missing[*]}); run as root or install them"
  log "installing missing packages: ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# kb_make_workdir NAME: sets `workdir` (${KB_ENV}_WORKDIR, kept; else a temporary directory,
# removed on exit unless ${KB_ENV}_KEEP_WORKDIR=1).
kb_make_workdir() {
  if [[ -n "$(kb_env WORKDIR)" ]]; then
    workdir="$(kb_env WORKDIR)"
    mkdir -p "${workdir}"
  else
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  fi
  trap kb_cleanup_workdir EXIT
  log "work directory: ${workdir}"
}
kb_cleanup_workdir() {
  if [[ "$(kb_env KEEP_WORKDIR)" == 1 || -n "$(kb_env WORKDIR)" ]]; then
    log "work directory kept: ${workdir}"
  else
    rm -rf "${workdir}"
  fi
}

# kb_install_files_present PREFIX [FILE ...]: the files every Kokkos install has, and FILEs
# (relative to PREFIX).
kb_install_files_present() {
  local prefix="$1" f
  shift
  compgen -G "${prefix}/lib*/cmake/Kokkos/KokkosConfig.cmake" >/dev/null &&
    compgen -G "${prefix}/lib*/libkokkoscore.a" >/dev/null &&
    [[ -f "${prefix}/include/KokkosCore_config.h" ]] || return 1
  for f in "$@"; do [[ -e "${prefix}/${f}" ]] || return 1; done
}

# kb_report_existing PREFIX STAMP: exit 0 with a message when PREFIX holds a complete install
# (the stamp is written last, so a build that died half-way is not taken as complete) and
# ${KB_ENV}_FORCE is not 1; return otherwise. Extra arguments: files as for
# kb_install_files_present. KB_STAMP_MATCH, when set, must be a line of the stamp (the
# source the install was built from).
kb_report_existing() {
  local prefix="$1" stamp="$2"
  shift 2
  [[ "$(kb_env FORCE)" == 1 ]] && return 0
  [[ -f "${prefix}/${stamp}" ]] && kb_install_files_present "${prefix}" "$@" || return 0
  if [[ -n "${KB_STAMP_MATCH:-}" ]] && ! grep -qxF "${KB_STAMP_MATCH}" "${prefix}/${stamp}"; then
    log "${prefix} holds a Kokkos built from another source: rebuilding"
    return 0
  fi
  log "complete Kokkos install already present in ${prefix}:"
  sed 's/^/    /' "${prefix}/${stamp}"
  log "nothing to do (set ${KB_ENV}_FORCE=1 to rebuild)"
  exit 0
}

# Reuse the mirror this machine already uses (deb822 .sources first, then sources.list).
kb_find_mirror() {
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

# kb_version_of SRC: the Kokkos version in SRC/CMakeLists.txt (e.g. 3.4.1).
kb_version_of() {
  sed -nE 's/^set\(Kokkos_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)\)$/\2/p' "$1/CMakeLists.txt" |
    sed 's/^0*\([0-9]\)/\1/' | paste -sd.
}

# kb_debian_kokkos_download DIR: Kokkos 3.4.1 extracted from Debian's trilinos source
# package into DIR (created); sets `kokkos_origin` (the orig tarball's name). Needs `workdir`.
kb_debian_kokkos_download() {
  local dest="$1" mirror apt_dir download_dir orig_tarball top_dir
  mirror="$(kb_find_mirror)"
  log "Debian mirror: ${mirror} (suite ${KB_SOURCE_SUITE}, deb-src only, private apt state)"
  chmod 755 "${workdir}"
  apt_dir="${workdir}/apt"
  download_dir="${workdir}/download"
  mkdir -p "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial" "${download_dir}"
  # Let apt's unprivileged download user write the source files (keeps apt's sandbox on).
  if id _apt >/dev/null 2>&1 && [[ "$(id -u)" -eq 0 ]]; then
    chown _apt "${download_dir}" "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial"
  fi
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
    "${mirror}" "${KB_SOURCE_SUITE}" >"${apt_dir}/sources.list"
  local apt_private=(
    -o "Dir::Etc::SourceList=${apt_dir}/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=${apt_dir}/lists"
    -o "Dir::Cache=${apt_dir}/cache"
  )
  # Hashes are checked by apt against the signed index. /etc/apt is never modified.
  log "fetching the ${KB_SOURCE_PACKAGE} source index"
  apt-get "${apt_private[@]}" -q update
  log "downloading ${KB_SOURCE_PACKAGE} source package (~170 MB)"
  (cd "${download_dir}" && apt-get "${apt_private[@]}" -q source --download-only "${KB_SOURCE_PACKAGE}")

  orig_tarball="$(compgen -G "${download_dir}/${KB_SOURCE_PACKAGE}_*.orig.tar.*" | head -n 1 || true)"
  [[ -n "${orig_tarball}" ]] || die "no ${KB_SOURCE_PACKAGE} orig tarball was downloaded"
  kokkos_origin="$(basename "${orig_tarball}")"
  log "using ${kokkos_origin}"

  # Only packages/kokkos.
  top_dir="$( (tar -tf "${orig_tarball}" 2>/dev/null || true) | head -n 1 | cut -d/ -f1)"
  [[ -n "${top_dir}" ]] || die "cannot read ${orig_tarball}"
  log "extracting ${top_dir}/packages/kokkos"
  mkdir -p "${dest}"
  tar -xf "${orig_tarball}" -C "${dest}" --strip-components=3 "${top_dir}/packages/kokkos"
  rm -rf "${download_dir}" "${apt_dir}" # 170 MB we no longer need
}

# kb_debian_kokkos_source DEST: a pristine copy of Kokkos 3.4.1 (Debian's trilinos) in DEST,
# from the source cache when it holds one, else downloaded (and then cached). Sets
# `kokkos_origin` (the trilinos orig tarball's name). Needs `workdir`.
kb_debian_kokkos_source() {
  local dest="$1" cache_root cache found_version
  kb_require_commands cmake make g++ gzip /usr/share/keyrings/debian-archive-keyring.gpg:debian-archive-keyring
  cache_root="${DUALNET_KOKKOS_SOURCE_CACHE-${XDG_CACHE_HOME:-${HOME}/.cache}/dualnet}"
  cache="${cache_root:+${cache_root}/kokkos-${KB_DEBIAN_KOKKOS_VERSION}-debian}"
  if [[ -n "${cache}" && -f "${cache}/.dualnet-origin" ]]; then
    kokkos_origin="$(cat "${cache}/.dualnet-origin")"
    log "Kokkos ${KB_DEBIAN_KOKKOS_VERSION} sources from the cache ${cache} (${kokkos_origin})"
    mkdir -p "${dest}"
    cp -a "${cache}/." "${dest}/"
    rm -f "${dest}/.dualnet-origin"
  else
    kb_debian_kokkos_download "${dest}"
    if [[ -n "${cache}" ]] && mkdir -p "${cache_root}" 2>/dev/null; then
      rm -rf "${cache}" "${cache}.tmp"
      cp -a "${dest}" "${cache}.tmp"
      printf '%s\n' "${kokkos_origin}" >"${cache}.tmp/.dualnet-origin" # written last: complete
      mv "${cache}.tmp" "${cache}"
      log "sources cached in ${cache} (DUALNET_KOKKOS_SOURCE_CACHE)"
    fi
  fi
  found_version="$(kb_version_of "${dest}")"
  [[ "${found_version}" == "${KB_DEBIAN_KOKKOS_VERSION}" ]] ||
    die "expected Kokkos ${KB_DEBIAN_KOKKOS_VERSION} in ${KB_SOURCE_PACKAGE}, found '${found_version}'"
}

# kb_build_install SRC BUILD PREFIX JOBS [CMAKE_ARG ...]: configure a static Release Kokkos
# with the Serial backend, C++17, no tests or examples, plus CMAKE_ARGs; build and install.
kb_build_install() {
  local src="$1" build="$2" prefix="$3" jobs="$4"
  shift 4
  cmake -S "${src}" -B "${build}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="${prefix}" \
    -DCMAKE_CXX_STANDARD=17 \
    -DCMAKE_CXX_EXTENSIONS=OFF \
    -DBUILD_SHARED_LIBS=OFF \
    -DKokkos_ENABLE_SERIAL=ON \
    -DKokkos_ENABLE_TESTS=OFF \
    -DKokkos_ENABLE_EXAMPLES=OFF \
    "$@"
  log "building with ${jobs} jobs"
  cmake --build "${build}" --parallel "${jobs}"
  log "installing into ${prefix}"
  cmake --install "${build}" >/dev/null
}

# kb_write_stamp PREFIX STAMP LINE...: the stamp, last, with a build time line.
kb_write_stamp() {
  local file="$1/$2"
  shift 2
  mkdir -p "$(dirname "${file}")"
  {
    printf '%s\n' "$@"
    printf 'built %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"${file}"
}
