#!/usr/bin/env bash
# Ranks x threads: `dualnet bench suite=reference` of a Serial build and of an OpenMP build at
# 1 rank x 1 thread, 1 x 2, 2 x 1 (and the oversubscribed 2 x 2, and teams of 2), repeated
# in turn, best of the repeats; prints the Markdown table of docs/performance.md.
#
# Usage: tests/backends/hybrid_bench.sh SERIAL_DUALNET OPENMP_DUALNET [REPEATS [BENCH KEYS ...]]
#   REPEATS   rounds over all configurations (default 5); best training and evaluation rate
#   BENCH KEYS  default: steps=1000 anchors=65536
# Environment: DUALNET_MPIEXEC, mpiexec with its flags (default: mpiexec --allow-run-as-root
# --oversubscribe).
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n '6,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
serial=$1 openmp=$2 repeats=${3:-5}
shift $(($# < 3 ? $# : 3))
keys=("$@")
((${#keys[@]} > 0)) || keys=(steps=1000 anchors=65536)
read -r -a mpiexec <<<"${DUALNET_MPIEXEC:-mpiexec --allow-run-as-root --oversubscribe}"
work=$(mktemp -d "${TMPDIR:-/tmp}/hybrid-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# label | binary | ranks | environment
configs=(
  "Serial, 1 rank|$serial|1|"
  "Serial, 2 ranks|$serial|2|"
  "OpenMP, 1 rank x 1 thread|$openmp|1|OMP_NUM_THREADS=1"
  "OpenMP, 1 rank x 2 threads|$openmp|1|OMP_NUM_THREADS=2"
  "OpenMP, 2 ranks x 1 thread|$openmp|2|OMP_NUM_THREADS=1"
  "OpenMP, 2 ranks x 2 threads (4 threads on 2 cores)|$openmp|2|OMP_NUM_THREADS=2"
  "OpenMP, 1 rank x 2 threads, teams of 2 (CI's setting)|$openmp|1|OMP_NUM_THREADS=2 DUALNET_HOST_TEAM_SIZE=2"
)
for ((r = 1; r <= repeats; ++r)); do
  for i in "${!configs[@]}"; do
    IFS='|' read -r _ bin ranks setting <<<"${configs[$i]}"
    read -r -a assignments <<<"OMP_PROC_BIND=false $setting"
    if [[ $ranks == 1 ]]; then
      env "${assignments[@]}" "$bin" bench suite=reference "${keys[@]}" json="$work/$i-$r.json" >/dev/null
    else
      # mpiexec binds each rank to a core; threads of a rank then need --bind-to none.
      env "${assignments[@]}" "${mpiexec[@]}" -q --bind-to none \
        -n "$ranks" "$bin" bench suite=reference "${keys[@]}" json="$work/$i-$r.json" >/dev/null
    fi
    printf '%s\n' "$(cut -d' ' -f1 /proc/loadavg)" >"$work/$i-$r.load"
  done
done

python3 - "$work" "$repeats" "${configs[@]}" <<'EOF'
import json, sys
work, repeats, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
num = lambda v: f"{v:,.0f}".replace(",", " ")  # noqa: E731
print(f"best of {repeats}; load: the 1-minute load average after that run")
print("| ranks x threads | training samples/s | load | evaluation anchors/s | load |")
print("|---|---:|---:|---:|---:|")
for i, c in enumerate(configs):
    runs = []
    for r in range(1, repeats + 1):
        x = json.load(open(f"{work}/{i}-{r}.json"))["configs"][0]
        runs.append((x["train_samples_per_s"], x["eval_samples_per_s"], float(open(f"{work}/{i}-{r}.load").read())))
    t = max(runs, key=lambda x: x[0])
    e = max(runs, key=lambda x: x[1])
    print(f"| {c.split('|')[0]} | {num(t[0])} | {t[2]:.1f} | {num(e[1])} | {e[2]:.1f} |")
EOF
