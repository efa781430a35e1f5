#!/usr/bin/env bash
# The H100 check, on a machine with the NVIDIA driver and CUDA 13 (with NCCL) but no MPI,
# HDF5 or Kokkos and no network, from a bundle made by tests/gpu/make-bundle.sh. Within
# 5 minutes (memcheck: up to 4 more) it runs
#   1. the NCCL reducer test (one rank, an MPI singleton: no mpirun there),
#   2. the GPU end-to-end test against the CPU build's reference runs in the bundle,
#   3. the benchmark (dualnet bench: the reference configuration, hid 64, depth 8, k 4),
#   4. compute-sanitizer memcheck (CUDA's out-of-bounds and misaligned access, invalid
#      frees and API errors) of a small training run and of the NCCL reducer test; skipped,
#      with a message, where compute-sanitizer is not installed,
# and prints one table: GPU samples/s, CPU samples/s measured on the build machine, ratio.
#
# Usage:  tests/gpu/device-check.sh [BUNDLE_DIR] [--expect-no-gpu]
#   BUNDLE_DIR        default: build-gpu-bundle at the repository root
#   --expect-no-gpu   for the build machine (make-bundle.sh uses it): succeed only if every
#                     GPU step reports that there is no GPU (tests: 77, skipped)
# Environment: DUALNET_NCCL_DIR  directory of libnccl.so.2 (default: searched for)
#              COMPUTE_SANITIZER the compute-sanitizer binary (default: PATH, then the CUDA dirs)
#              DUALNET_CHECK_DIR where runs and logs go (default: a new temporary directory)
#              OUT               if set (the device tool), summary.txt and bench-gpu.json go there
# Exit: 0 all steps passed (memcheck: or skipped for want of compute-sanitizer; with
#       --expect-no-gpu, all skipped), 1 otherwise.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bundle="${repo}/build-gpu-bundle"
expect_no_gpu=0
for a in "$@"; do
  case "$a" in
    --expect-no-gpu) expect_no_gpu=1 ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) bundle="$a" ;;
  esac
done
[[ "${bundle}" == /* ]] || bundle="$(pwd)/${bundle}"
[[ -f "${bundle}/env.sh" && -x "${bundle}/bin/dualnet" ]] ||
  { echo "device-check: no bundle in ${bundle}; make one with tests/gpu/make-bundle.sh" >&2; exit 1; }
work="${DUALNET_CHECK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/dualnet-device-check.XXXXXX")}"
mkdir -p "${work}"
t0=$SECONDS
say() { printf '[device-check %3ds] %s\n' $((SECONDS - t0)) "$*"; }
field() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$2"; }
ldconfig_p() { # ldconfig -p; root's PATH may lack /sbin
  if command -v ldconfig >/dev/null; then ldconfig -p 2>/dev/null; else /sbin/ldconfig -p 2>/dev/null; fi
}

# --- The machine -------------------------------------------------------------------------------
say "bundle ${bundle} ($(field git_commit "${bundle}/manifest.txt"), built $(field built "${bundle}/manifest.txt"))"
if command -v nvidia-smi >/dev/null; then
  gpu_name="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
  say "GPU: ${gpu_name:-none reported by nvidia-smi}"
else
  gpu_name=""
  say "GPU: nvidia-smi not found"
fi
need_glibc="$(field needs_glibc "${bundle}/manifest.txt")"
have_glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')"
if [[ -n "${need_glibc}" && -n "${have_glibc}" ]] &&
  [[ "$(printf '%s\n%s\n' "${need_glibc}" "${have_glibc}" | sort -V | head -n 1)" != "${need_glibc}" ]]; then
  say "glibc ${have_glibc} here, the bundle needs ${need_glibc}: its binaries cannot run on this machine"
  exit 1
fi

# NCCL: the target's own (the bundle leaves it out: 208 MiB).
find_nccl() {
  local d f
  if [[ -n "${DUALNET_NCCL_DIR:-}" ]]; then printf '%s\n' "${DUALNET_NCCL_DIR}"; return; fi
  f="$(ldconfig_p | awk '/libnccl\.so\.2 .*x86-64/ { print $NF; exit }')"
  if [[ -n "$f" ]]; then dirname "$f"; return; fi
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
    /usr/local/cuda-13*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [[ -e "$d/libnccl.so.2" ]] && { printf '%s\n' "$d"; return; }
  done
  # e.g. the nvidia-nccl-cu13 wheel of a Python environment
  f="$(find /opt /usr/local /usr/lib /root -name 'libnccl.so.2' -print -quit 2>/dev/null)"
  [[ -n "$f" ]] && dirname "$f"
}
DUALNET_NCCL_DIR="$(find_nccl)"
if [[ -z "${DUALNET_NCCL_DIR}" ]]; then
  say "libnccl.so.2 not found (set DUALNET_NCCL_DIR): the CUDA binaries cannot start"
  exit 1
fi
say "NCCL: ${DUALNET_NCCL_DIR}/libnccl.so.2"
export DUALNET_NCCL_DIR

# libstdc++: the target's when it is as new as the bundle's, else the bundle's.
need_cxx="$(field needs_glibcxx "${bundle}/manifest.txt")"
sys_cxx="$(ldconfig_p | awk '/libstdc\+\+\.so\.6 .*x86-64/ { print $NF; exit }')"
export DUALNET_USE_FALLBACK=1
if [[ -n "${sys_cxx}" && -n "${need_cxx}" ]] && grep -qa "${need_cxx}" "${sys_cxx}"; then DUALNET_USE_FALLBACK=0; fi
say "libstdc++: $([[ ${DUALNET_USE_FALLBACK} == 1 ]] && echo "the bundle's" || echo "${sys_cxx}") (needs ${need_cxx})"

# shellcheck source=/dev/null
source "${bundle}/env.sh"
export NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
unresolved="$(for f in "${bundle}"/bin/*; do ldd "$f" | grep 'not found'; done | sort -u)"
if [[ -n "${unresolved}" ]]; then
  say "unresolved libraries:"; printf '%s\n' "${unresolved}"
  exit 1
fi

# --- The steps ------------------------------------------------------------------------------------
declare -A status
run_step() { # name timeout_s command...
  local name="$1" limit="$2" rc
  shift 2
  say "${name}: $*"
  timeout --kill-after=5 "${limit}" "$@" >"${work}/${name}.log" 2>&1
  rc=$?
  case "${rc}" in
    0) status[${name}]="passed" ;;
    77) status[${name}]="skipped (no GPU)" ;;
    124 | 137) status[${name}]="TIMED OUT after ${limit} s" ;;
    *) status[${name}]="FAILED (exit ${rc})" ;;
  esac
  say "${name}: ${status[${name}]} (log ${work}/${name}.log)"
  [[ "${rc}" == 0 ]] || tail -n 25 "${work}/${name}.log" | sed 's/^/    | /'
  return 0
}

run_step nccl_test 60 "${bundle}/bin/test_nccl_reducer"
run_step gpu_e2e 120 "${bundle}/bin/test_gpu_e2e" --dualnet "${bundle}/bin/dualnet" \
  --reference-dir "${bundle}/cpu" --workdir "${work}/e2e"
[[ "${status[gpu_e2e]}" == passed ]] && grep -E '^(run|short|reference) ' "${work}/gpu_e2e.log" |
  grep -vE ' (ok|info)$' | sed 's/^/    /'
# shellcheck disable=SC2046  # the benchmark's arguments are words
run_step bench 100 "${bundle}/bin/dualnet" bench $(cat "${bundle}/gpu-bench-args") json="${work}/bench-gpu.json"
if [[ ${expect_no_gpu} == 1 && "${status[bench]}" == "FAILED (exit 1)" ]] &&
  grep -q "no CUDA device is usable" "${work}/bench.log"; then
  status[bench]="skipped (no GPU: dualnet says so and exits 1)"
fi

# compute-sanitizer memcheck: any error it reports makes the step fail (exit 86). Slow (every
# access is checked), so a small run: depth 3, hid 4, 512 samples, one epoch, the MPI reducer
# on one rank; then the NCCL reducer test.
find_sanitizer() {
  local c
  for c in "${COMPUTE_SANITIZER:-}" "$(command -v compute-sanitizer 2>/dev/null)" /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda-13*/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [[ -n "$c" && -x "$c" ]] && { printf '%s\n' "$c"; return; }
  done
}
sanitizer="$(find_sanitizer)"
memcheck=(--tool memcheck --error-exitcode 86 --leak-check no --report-api-errors all)
if [[ ${expect_no_gpu} == 1 ]]; then
  status[memcheck_train]="skipped (no GPU)"
  status[memcheck_nccl]="skipped (no GPU)"
elif [[ -z "${sanitizer}" ]]; then
  say "compute-sanitizer not found (set COMPUTE_SANITIZER): memcheck skipped"
  status[memcheck_train]="skipped (no compute-sanitizer)"
  status[memcheck_nccl]="skipped (no compute-sanitizer)"
else
  say "compute-sanitizer: ${sanitizer} ($("${sanitizer}" --version 2>/dev/null | tail -n 1))"
  run_step memcheck_train 120 "${sanitizer}" "${memcheck[@]}" "${bundle}/bin/dualnet" train depth=3 hid=4 batch=64 \
    samples_per_pass=512 epochs=1 reducer=mpi out="${work}/memcheck-train" overwrite=true
  run_step memcheck_nccl 120 "${sanitizer}" "${memcheck[@]}" "${bundle}/bin/test_nccl_reducer"
fi

# --- The table ------------------------------------------------------------------------------------
rate() { # rate JSON CONFIG FIELD
  [[ -f "$1" ]] || return 0
  awk -v c="\"name\": \"$2\"" -v f="\"$3\": " \
    'index($0, c) { s = substr($0, index($0, f) + length(f)); sub(/[,}].*/, "", s); print s }' "$1"
}
ratio() { awk -v g="$1" -v c="$2" 'BEGIN { if (g + 0 > 0 && c + 0 > 0) printf "%.1fx", g / c; else print "-" }'; }
cpu_rate() { # cpu_rate CONFIG COLUMN, from the bundle's cpu/bench.tsv
  awk -F'\t' -v c="$1" -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next } $1 == c { print $h[col] }' \
    "${bundle}/cpu/bench.tsv"
}
num() { awk -v x="$1" 'BEGIN { if (x + 0 > 0) printf "%.0f", x; else print "-" }'; }
{
  echo
  echo "dualnet GPU check: ${gpu_name:-no GPU}; bundle $(field git_commit "${bundle}/manifest.txt")"
  printf '%-10s %-6s %14s %14s %14s %9s\n' config pass "GPU samples/s" "CPU 2 ranks" "CPU 1 rank" "GPU/CPU"
  for c in reference hid64 depth8 k4; do
    for kind in train eval; do
      g="$(rate "${work}/bench-gpu.json" "${c}" "${kind}_samples_per_s")"
      c2="$(cpu_rate "${c}" "cpu_${kind}_np2")"
      c1="$(cpu_rate "${c}" "cpu_${kind}_np1")"
      best="$(awk -v a="${c1}" -v b="${c2}" 'BEGIN { print (a + 0 > b + 0) ? a : b }')"
      printf '%-10s %-6s %14s %14s %14s %9s\n' "${c}" "${kind}" "$(num "$g")" "$(num "${c2}")" "$(num "${c1}")" \
        "$(ratio "$g" "${best}")"
    done
  done
  echo "GPU: one rank, dualnet bench $(cat "${bundle}/gpu-bench-args"). CPU: the build machine,"
  echo "$(field cpu_model "${bundle}/cpu/host.tsv"), $(field cpu_cores "${bundle}/cpu/host.tsv") cores, dualnet bench $(field cpu_bench_args "${bundle}/cpu/host.tsv"),"
  echo "load average $(field loadavg_before "${bundle}/cpu/host.tsv") before, $(field loadavg_after "${bundle}/cpu/host.tsv") after (a shared machine)."
  echo "GPU/CPU: against the better of the two CPU columns. train = training samples/s"
  echo "(batch 128); eval = evaluation anchors/s."
  echo
  for s in nccl_test gpu_e2e bench memcheck_train memcheck_nccl; do printf '%-14s %s\n' "$s" "${status[$s]}"; done
  echo "total ${SECONDS} s"
} | tee "${work}/summary.txt"
if [[ -n "${OUT:-}" && -d "${OUT}" ]]; then
  cp "${work}/summary.txt" "${OUT}/" 2>/dev/null
  [[ -f "${work}/bench-gpu.json" ]] && cp "${work}/bench-gpu.json" "${OUT}/"
  tar -czf "${OUT}/logs.tar.gz" -C "${work}" --exclude='*.h5' . 2>/dev/null
fi

if [[ ${expect_no_gpu} == 1 ]]; then
  for s in nccl_test gpu_e2e bench memcheck_train memcheck_nccl; do [[ "${status[$s]}" == skipped* ]] || exit 1; done
  exit 0
fi
for s in nccl_test gpu_e2e bench; do [[ "${status[$s]}" == passed ]] || exit 1; done
for s in memcheck_train memcheck_nccl; do [[ "${status[$s]}" == passed || "${status[$s]}" == "skipped (no compute-sanitizer)" ]] || exit 1; done
exit 0
