#!/usr/bin/env bash
# Builds the GPU bundle: what tests/gpu/device-check.sh needs on a GPU machine that has the
# NVIDIA driver and CUDA 13 (with NCCL) but no MPI, HDF5 or Kokkos and no network.
#
# Usage:  tests/gpu/make-bundle.sh [BUNDLE_DIR]      (default: build-gpu-bundle, ignored by git)
# Environment (all optional):
#   DUALNET_CPU_BUILD     the CPU build (default: build, the README's; configured if new, and
#                         its dualnet rebuilt). It makes the reference metrics of the GPU
#                         end-to-end test and the CPU samples/s of the table.
#   DUALNET_CUDA_BUILD    the CUDA build (default: build-cuda, made with cmake/build-cuda.sh)
#   DUALNET_BUNDLE_REUSE_CPU=1
#                         keep cpu/ (reference runs, CPU benchmark) from an earlier bundle
#
# Contents (docs/gpu.md): bin/ (CUDA dualnet and the two GPU tests), lib/ (every shared
# library they need except glibc, the NVIDIA driver and NCCL: libnccl.so.2 is 208 MiB and
# does not compress, so the target's own is used), lib-fallback/ (libstdc++, libgcc_s: used
# only when the target's are older), ompi/ (Open MPI components and help texts; one rank
# runs as an MPI singleton without mpirun or orted), cpu/ (reference runs and CPU benchmark
# measured here), env.sh, manifest.txt. The bundle is checked here in a mount namespace
# that hides the system's MPI and HDF5, then must fit the device machine's 64 MiB.
set -euo pipefail

log() { printf '[make-bundle] %s\n' "$*"; }
die() { printf '[make-bundle] ERROR: %s\n' "$*" >&2; exit 1; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
abs() { [[ "$1" == /* ]] && printf '%s\n' "$1" || printf '%s\n' "${repo}/$1"; }
bundle="$(abs "${1:-build-gpu-bundle}")"
cpu_build="$(abs "${DUALNET_CPU_BUILD:-build}")"
cuda_build="$(abs "${DUALNET_CUDA_BUILD:-build-cuda}")"
readonly max_mib=60  # the device machine takes 64 MiB with the working tree

# The benchmark (`dualnet bench`, suite default: reference, hid64, depth8, k4). The CPU here
# is slow, so it runs fewer steps and anchors; samples/s are rates either way.
readonly cpu_bench_args="steps=60 anchors=256"
readonly gpu_bench_args="steps=300 anchors=2048"
# The GPU end-to-end test's runs (tests/gpu/test_gpu_e2e.cpp, kRuns): keep them in step.
readonly e2e_runs=("short:samples_per_pass=1280 epochs=2" "reference:epochs=2")

t_start=$SECONDS
step() { log "$* ($((SECONDS - t_start)) s)"; }

# --- 1. Builds --------------------------------------------------------------------------------
step "CUDA build in ${cuda_build}"
"${repo}/cmake/build-cuda.sh" "${cuda_build}"
# Always brought up to date: the CPU reference runs must come from the same sources.
step "CPU build in ${cpu_build}"
[[ -f "${cpu_build}/CMakeCache.txt" ]] || cmake -S "${repo}" -B "${cpu_build}" >/dev/null
cmake --build "${cpu_build}" -j2 --target dualnet

# --- 2. Binaries and libraries ----------------------------------------------------------------
step "collecting binaries and shared libraries into ${bundle}"
keep_cpu=""
if [[ "${DUALNET_BUNDLE_REUSE_CPU:-0}" == 1 && -f "${bundle}/cpu/bench.tsv" ]]; then
  keep_cpu="$(mktemp -d)"
  mv "${bundle}/cpu" "${keep_cpu}/"
fi
rm -rf "${bundle}"
mkdir -p "${bundle}"/{bin,lib,lib-fallback,ompi/lib/openmpi3,ompi/share/openmpi,cpu}
[[ -n "${keep_cpu}" ]] && rm -rf "${bundle}/cpu" && mv "${keep_cpu}/cpu" "${bundle}/" && rmdir "${keep_cpu}"

cp "${cuda_build}/dualnet" "${bundle}/bin/dualnet"
cp "${cuda_build}/tests/gpu/dualnet_test_nccl_reducer" "${bundle}/bin/test_nccl_reducer"
cp "${cuda_build}/tests/gpu/dualnet_test_gpu_e2e" "${bundle}/bin/test_gpu_e2e"
strip --strip-debug "${bundle}"/bin/*

# Open MPI's components (dlopen'ed by MPI_Init). Skip the network-fabric ones (UCX, OFI,
# PSM, verbs): one process needs none, and their libraries are large.
ompi_pkglib="$(ompi_info --path pkglibdir --parsable 2>/dev/null | sed -n 's/^path:pkglibdir://p')"
[[ -d "${ompi_pkglib}" ]] || ompi_pkglib=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
fabric='lib(ucp|uct|ucs|ucm|fabric|psm|psm2|psm_infinipath|infinipath|ibverbs|rdmacm|mlx5|efa)\.so'
for comp in "${ompi_pkglib}"/mca_*.so; do
  deps="$(ldd "${comp}" 2>/dev/null || true)"
  if grep -qE "${fabric}|not found" <<<"${deps}"; then continue; fi
  cp "${comp}" "${bundle}/ompi/lib/openmpi3/"
done
ompi_data="$(ompi_info --path pkgdatadir --parsable 2>/dev/null | sed -n 's/^path:pkgdatadir://p')"
cp -r "${ompi_data:-/usr/share/openmpi}"/. "${bundle}/ompi/share/openmpi/"

# Every library the binaries and components load, except glibc, the driver and NCCL.
system_only='^(linux-vdso|ld-linux-x86-64|libc|libm|libmvec|libpthread|libdl|librt|libutil|libresolv|libnsl|libanl|libBrokenLocale|libcuda|libnvidia-.*|libnccl)\.so'
fallback_only='^(libstdc\+\+|libgcc_s)\.so'
{
  for f in "${bundle}"/bin/* "${bundle}"/ompi/lib/openmpi3/*.so; do ldd "$f"; done
} | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u | while read -r name path; do
  if [[ "${name}" =~ ${system_only} ]]; then continue; fi
  if [[ "${name}" =~ ${fallback_only} ]]; then cp -L "${path}" "${bundle}/lib-fallback/${name}"; continue; fi
  cp -L "${path}" "${bundle}/lib/${name}"
done
missing="$(for f in "${bundle}"/bin/*; do ldd "$f" | grep 'not found' || true; done)"
[[ -z "${missing}" ]] || die "unresolved libraries here: ${missing}"

# --- 3. Environment for the target --------------------------------------------------------------
cat >"${bundle}/env.sh" <<'EOF'
# Sourced by tests/gpu/device-check.sh: the bundle's libraries and a standalone Open MPI.
# Needs DUALNET_NCCL_DIR (the directory of the target's libnccl.so.2) and, when the target's
# libstdc++ is older than the bundle's, DUALNET_USE_FALLBACK=1.
_b="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_ld="${_b}/lib"
[[ "${DUALNET_USE_FALLBACK:-0}" == 1 ]] && _ld="${_ld}:${_b}/lib-fallback"
[[ -n "${DUALNET_NCCL_DIR:-}" ]] && _ld="${_ld}:${DUALNET_NCCL_DIR}"
export LD_LIBRARY_PATH="${_ld}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
# Open MPI from the bundle: components and help texts, one process without mpirun/orted.
export OPAL_PREFIX="${_b}/ompi"
export OMPI_MCA_mca_base_component_path="${_b}/ompi/lib/openmpi3"
export OMPI_MCA_ess_singleton_isolated=1
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_osc='^ucx,pt2pt' OMPI_MCA_mtl='^ofi'
export OMPI_MCA_btl_base_warn_component_unused=0 OMPI_MCA_mca_base_component_show_load_errors=0
export HWLOC_COMPONENTS='-gl,-opencl'
unset _b _ld
EOF

# --- 4. CPU reference runs and benchmark (measured here) ----------------------------------------
mpirun_root=()
[[ "$(id -u)" -eq 0 ]] && mpirun_root=(--allow-run-as-root)
cpu="${cpu_build}/dualnet"
if [[ ! -f "${bundle}/cpu/bench.tsv" ]]; then
  for spec in "${e2e_runs[@]}"; do
    name="${spec%%:*}"
    step "CPU reference run '${name}': ${spec#*:}"
    # shellcheck disable=SC2086  # the keys are words
    "${cpu}" train ${spec#*:} out="${bundle}/cpu/${name}" overwrite=true >"${bundle}/cpu/${name}.log" 2>&1 ||
      die "CPU reference run ${name} failed: see ${bundle}/cpu/${name}.log"
    grep -q "stopped by" "${bundle}/cpu/${name}.log" && die "CPU reference run ${name} was stopped by a signal"
    rm -rf "${bundle}/cpu/${name}/checkpoints"
  done
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  for np in 1 2; do
    step "CPU benchmark, ${np} rank(s): dualnet bench ${cpu_bench_args}"
    # shellcheck disable=SC2086
    mpirun "${mpirun_root[@]}" -n "${np}" "${cpu}" bench ${cpu_bench_args} json="${bundle}/cpu/bench-np${np}.json" \
      >"${bundle}/cpu/bench-np${np}.log" 2>&1 || die "CPU benchmark failed: see ${bundle}/cpu/bench-np${np}.log"
  done
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
  rate() { # rate FILE CONFIG FIELD
    awk -v c="\"name\": \"$2\"" -v f="\"$3\": " 'index($0, c) { s = substr($0, index($0, f) + length(f)); sub(/[,}].*/, "", s); print s }' "$1"
  }
  {
    printf 'config\tcpu_train_np1\tcpu_train_np2\tcpu_eval_np1\tcpu_eval_np2\n'
    for c in reference hid64 depth8 k4; do
      printf '%s\t%s\t%s\t%s\t%s\n' "${c}" \
        "$(rate "${bundle}/cpu/bench-np1.json" "${c}" train_samples_per_s)" \
        "$(rate "${bundle}/cpu/bench-np2.json" "${c}" train_samples_per_s)" \
        "$(rate "${bundle}/cpu/bench-np1.json" "${c}" eval_samples_per_s)" \
        "$(rate "${bundle}/cpu/bench-np2.json" "${c}" eval_samples_per_s)"
    done
  } >"${bundle}/cpu/bench.tsv"
  {
    printf 'cpu_model\t%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    printf 'cpu_cores\t%s\n' "$(nproc)"
    printf 'cpu_bench_args\t%s\n' "${cpu_bench_args}"
    printf 'loadavg_before\t%s\n' "${load_before}"
    printf 'loadavg_after\t%s\n' "${load_after}"
    printf 'cpu_build_flags\t%s\n' "$(grep -E '^DUALNET_NATIVE:' "${cpu_build}/CMakeCache.txt" || true)"
  } >"${bundle}/cpu/host.tsv"
else
  step "reusing the CPU reference runs and benchmark in ${bundle}/cpu"
fi
printf '%s\n' "${gpu_bench_args}" >"${bundle}/gpu-bench-args"

# --- 5. Manifest ---------------------------------------------------------------------------------
glibc_max="$(for f in "${bundle}"/bin/* "${bundle}"/lib/*.so* "${bundle}"/ompi/lib/openmpi3/*.so; do
  objdump -T "$f" 2>/dev/null; done | grep -oE 'GLIBC_2\.[0-9]+' | sort -t. -k2 -n -u | tail -n 1)"
glibcxx_max="$(for f in "${bundle}"/bin/* "${bundle}"/lib/*.so* "${bundle}"/ompi/lib/openmpi3/*.so; do
  objdump -T "$f" 2>/dev/null; done | grep -oE 'GLIBCXX_3\.4\.[0-9]+' | sort -t. -k3 -n -u | tail -n 1)"
{
  printf 'git_commit\t%s\n' "$(git -C "${repo}" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "${repo}" diff --quiet HEAD -- src tests 2>/dev/null || echo '+local-changes')"
  printf 'built\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'kokkos\t%s\n' "$(head -n 1 "${KOKKOS_CUDA_PREFIX:-/opt/kokkos-cuda}/share/kokkos-cuda-build.stamp" 2>/dev/null || echo unknown)"
  printf 'cuda_archs\tsm_80 sm_90 (+compute_80 PTX)\n'
  printf 'nccl_headers\t%s\n' "$(sed -nE 's/^#define NCCL_(MAJOR|MINOR|PATCH) ([0-9]+).*/\2/p' "${CUDA_ROOT:-/usr/local/cuda}/include/nccl.h" | paste -sd.)"
  printf 'needs_glibc\t%s\n' "${glibc_max#GLIBC_}"
  printf 'needs_glibcxx\t%s\n' "${glibcxx_max}"
} >"${bundle}/manifest.txt"

# --- 6. Check it here: system MPI and HDF5 hidden -------------------------------------------------
size_mib=$(($(du -sk "${bundle}" | cut -f1) / 1024))
count() { find "$1" -maxdepth 1 -type f | wc -l; }
step "bundle: ${size_mib} MiB ($(count "${bundle}/lib") libraries, $(count "${bundle}/ompi/lib/openmpi3") Open MPI components)"
((size_mib <= max_mib)) || die "the bundle is ${size_mib} MiB, over ${max_mib} MiB"

if [[ "$(id -u)" -eq 0 ]] && command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
  step "checking the bundle with the system's MPI and HDF5 hidden (private mount namespace)"
  hide="$(mktemp)"
  {
    echo 'set -e'
    for d in "${ompi_pkglib%/openmpi3}" /usr/lib/x86_64-linux-gnu/hdf5 "${ompi_data:-/usr/share/openmpi}" /etc/openmpi; do
      [[ -d "$d" ]] && echo "mount -t tmpfs none '$d'"
    done
    for f in /usr/bin/orted /usr/bin/mpirun; do [[ -e "$f" ]] && echo "mount --bind /dev/null '$(readlink -f "$f")'"; done
    for lib in "${bundle}"/lib/*; do
      sys="/usr/lib/x86_64-linux-gnu/$(basename "${lib}")"
      [[ -e "${sys}" ]] && echo "mount --bind /dev/null '$(readlink -f "${sys}")'"
    done
    echo 'exec "$@"'
  } >"${hide}"
  # A CPU dualnet on the bundle's MPI and HDF5 (its Kokkos is the system's, not hidden):
  # MPI singleton start without orted, HDF5 writes.
  # shellcheck disable=SC2016  # expanded by the inner bash
  unshare -m --propagation private bash "${hide}" env -i PATH=/usr/bin:/bin HOME="${HOME}" bash -c '
    set -e; source "$1/env.sh"; export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/usr/lib/x86_64-linux-gnu"
    "$2" train samples_per_pass=256 batch=64 epochs=1 out="$3" overwrite=true >/dev/null' _ \
    "${bundle}" "${cpu}" "$(mktemp -d)/run" || die "a CPU run on the bundle's MPI and HDF5 failed"
  # The device check itself: here without a GPU, so the tests must report 77 (skipped).
  DUALNET_NCCL_DIR="${CUDA_ROOT:-/usr/local/cuda}/lib64" unshare -m --propagation private bash "${hide}" \
    env -i PATH=/usr/bin:/bin HOME="${HOME}" DUALNET_NCCL_DIR="${CUDA_ROOT:-/usr/local/cuda}/lib64" \
    bash "${repo}/tests/gpu/device-check.sh" "${bundle}" --expect-no-gpu ||
    die "the device check on the bundle did not behave as expected without a GPU"
  rm -f "${hide}"
else
  log "not root or no unshare: the bundle was not checked with the system's MPI/HDF5 hidden"
fi
step "done: ${bundle} (${size_mib} MiB). On the GPU machine: tests/gpu/device-check.sh ${bundle#"${repo}"/}"
