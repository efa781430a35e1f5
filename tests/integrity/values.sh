#!/usr/bin/env bash
# Class "values": a key given a value it cannot take — wrong type, out of range, not
# representable, inconsistent with other keys, unsafe to store — is refused before any
# work, with one line naming the key, at 1 and 2 ranks; nothing is created or changed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_work
mkdir -p existing && echo keep >existing/notes.txt

cases=(
  # expected words | arguments
  "unknown key 'hidd'|hidd=4"
  "not of the form key=value|depth=3 hid"
  "depth|depth=abc"
  "depth|depth=3.0"
  "depth|depth=99999999999999999999"
  "depth|depth=[3]"
  "depth|'depth=[3, 4]'"
  "depth|depth={a=1}"
  "lr|lr=fast"
  "lr|lr=-0.1"
  "lr|lr=1e400"
  "lr|lr=-1e400"
  "lr|lr=1e-400"
  "lr|lr=inf"
  "lr|lr=nan"
  "temp|temp=0"
  "bias|bias=maybe"
  "bias|bias=1"
  "hid|hid=0"
  "hid|hid=-1"
  "delta_upper|delta_upper=1.5"
  "delta_lower|delta_lower=0.9 delta_upper=0.8"
  "loss|loss=mse"
  "loss|loss="
  "negatives|loss=triplet negatives=2"
  "share_levels|depth=3 share_levels=4"
  "micro_batch|batch=64 micro_batch=3"
  "samples_per_pass|batch=64 samples_per_pass=1000"
  "batch|batch=63"
  "num_children|depth=20 num_children=16"
  "memory|depth=11 num_children=4 hid=64 out=big"
  "memory|samples_per_pass=8796093022208 out=big"
  "run_id|run_id=abc"
  "key 'out' must be a non-empty string of at most 4096 bytes of UTF-8 without control characters, got ''|out="
  "key 'out' must be a non-empty string|out=\$'a\nb'"
  "key 'out' must be a non-empty string|out=\$'a\tb'"
  "key 'out' must be a non-empty string|out=\$'a\x7fb'"
  "got '\\xFF\\xFE' (is not valid UTF-8|out=\$'\xff\xfe'"
  "resume|resume=\$'x\ny'"
  "reducer|reducer=gloo"
  "balance must be auto, even, or|balance=1,2,3"
  "balance must be auto, even, or|balance=fast"
  "balance must be auto, even, or|balance=1,-1"
  "balance must be auto, even, or|balance=1,nan"
  "corr_full|corr_full=yes"
  "beyond the range of a double|lr=1e400"
  "too close to zero|lr=4e-320"
  "64-bit integer|seed=0x8000000000000000"
  "64-bit integer|seed=0b10000000000000000000000000000000000000000000000000000000000000000"
  "'depth'|\$'depth=[1,\n2]'"
  "'depth'|\"depth=\$(head -c 100000 /dev/zero | tr '\\0' '[')\""
  "4097 bytes|\"out=\$(head -c 4097 /dev/zero | tr '\\0' a)\""
  "unknown key|\$'de\npth=3'"
  "unknown command|trian"
  # Kokkos options and the environment variables Kokkos reads: checked before Kokkos starts.
  "Kokkos option '--kokkos-threads=abc'|--kokkos-threads=abc"
  "Kokkos option '--kokkos-numa=-3'|--kokkos-numa=-3"
  "unknown Kokkos option '--kokkos-foo'|--kokkos-foo"
  "Kokkos option '--threads=x'|--threads=x"
  "needs a value|--kokkos-threads"
  "skips the only device|--kokkos-num-devices=1,0"
  "mpi_rank or random|--kokkos-map-device-id-by=foo"
  "cannot load the tools library|--kokkos-tools-libs=/nonexistent/tool.so"
  "takes no value|--kokkos-help=1"
  "both choose the device|--kokkos-device-id=0 --kokkos-num-devices=2"
  "KOKKOS_NUM_THREADS|env KOKKOS_NUM_THREADS=abc epochs=1"
  "conflicts with|env KOKKOS_NUM_THREADS=2 --kokkos-threads=3"
)
refusal_stdout_empty=1  # a refused value prints nothing on stdout (no header, no table)
run_refusals
[[ ! -e big ]] || fail "a refused run created its directory"

# A batch that one rank accepts but 2 ranks cannot split.
before=$(snapshot)
refuse_one 2 "batch (5) must be divisible by the number of ranks (2)" train batch=5 micro_batch=1 samples_per_pass=500
[[ $(snapshot) == "$before" && ! -e dualnet-run ]] || fail "a refused batch created or changed files"

# --kokkos-help prints Kokkos's help once and exits 0 without training, whatever else is given.
for np in 1 2; do
  before=$(snapshot)
  rc=0
  env KOKKOS_NUM_THREADS=abc timeout 60 "${mpiexec[@]}" -q -n "$np" "$bin" train --kokkos-help --kokkos-foo epochs=1 \
    >"$logs/out" 2>"$logs/err" </dev/null || rc=$?
  [[ $rc == 0 && ! -s $logs/err ]] || fail "[$np] --kokkos-help: exit $rc: $(cat "$logs/err")"
  [[ $(grep -c -- '--kokkos-help' "$logs/out") -ge 1 && $(grep -c -- '--kokkos-threads' "$logs/out") == 1 ]] ||
    fail "[$np] --kokkos-help did not print Kokkos's help once: $(head -5 "$logs/out")"
  [[ $(snapshot) == "$before" && ! -e dualnet-run ]] || fail "[$np] --kokkos-help created or changed files"
done
echo "PASS: values"
