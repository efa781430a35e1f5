#!/usr/bin/env bash
# Compiler launcher of the CUDA build (cmake/build-cuda.sh): runs one compile command, whose
# nvcc has -Xptxas -v, and moves ptxas's resource report (registers, stack frame, spill
# stores and loads per kernel) out of the build output into OBJECT.ptxas.log beside the
# object file, one log per translation unit, so that tests/gpu/check_spills.py can read
# every kernel's numbers after a build, incremental or not. Everything else the compiler
# prints still goes to stderr; the compile's exit status is kept.
#
# Usage (as the first element of CMAKE_CXX_COMPILER_LAUNCHER):  ptxas-log.sh COMMAND...
set -uo pipefail

obj=""
prev=""
for arg in "$@"; do
  [[ "${prev}" == "-o" ]] && obj="${arg}"
  prev="${arg}"
done
if [[ -z "${obj}" ]]; then exec "$@"; fi  # not a compile to an object: nothing to record

err="$(mktemp)"
trap 'rm -f "${err}"' EXIT
"$@" 2>"${err}"
rc=$?
# ptxas -v: "ptxas info    : ..." lines, and the indented "N bytes stack frame, ..." line
# after each "Function properties for ..." line.
report='^(ptxas info|[[:space:]]+[0-9]+ bytes stack frame)'
grep -E "${report}" "${err}" >"${obj}.ptxas.log" || true
grep -Ev "${report}" "${err}" >&2 || true
exit "${rc}"
