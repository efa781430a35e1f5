#!/usr/bin/env bash
# Reproduce the HLTM study of Tian et al. (2020) with one command: the sweep (claims 1-4),
# the covariance-operator checks (claims 5-6), the tables, the figures and claims.md.
#
#   jobs/reproduce.sh lite|paper [--jobs N] [--dir DIR]
#
#   lite   jobs/paper-lite-sweep.toml (24 runs of 10 epochs); covop on 3 seeds, batch 2^17
#          (and 2^13, 2^15 for the slope): about 10 minutes on 2 cores (docs/reproduce.md)
#   paper  jobs/paper-sweep.toml (240 runs of 50 epochs); covop on 5 seeds, batch 2^20
#          (and 2^14, 2^16, 2^18): about 7 hours on 2 cores (estimated), or run the
#          sweep on Slurm first:
#            python3 jobs/sweep.py submit jobs/paper-sweep.toml --dir DIR/sweep --wait
#            jobs/reproduce.sh paper --dir DIR        # skips the finished runs
#
#   --jobs N   runs (and covop seeds) at once, one core each (default: the cores here)
#   --dir DIR  where everything goes (default: $DUALNET_RUNS_DIR/reproduce-MODE, and
#              DUALNET_RUNS_DIR defaults to ./runs)
#
# Writes DIR/sweep/ (jobs/sweep.py's layout), DIR/covop/seed-S/ (a short bias-free training
# and its covop-b<batch>.h5 reports), DIR/table.md, DIR/table.csv,
# DIR/table-without-collapsed.md, DIR/figures/ and DIR/claims.md. Rerunning skips finished
# runs and finished covop reports; the tables, figures and claims.md are made again. Environment: DUALNET_BIN (default build/dualnet),
# DUALNET_ANALYZE (default .venv/bin/dualnet-analyze), PYTHON (default python3).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

die() {
    printf 'reproduce.sh: %s\n' "$*" >&2
    exit 2
}

say() {
    printf '[reproduce %(%T)T] %s\n' -1 "$*" >&2
}

mode=${1:-}
case "$mode" in
    lite | paper) shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
esac

jobs=$(nproc)
dir=""
while (($#)); do
    case "$1" in
        --jobs=* | --dir=*) # --opt=value reads as --opt value
            set -- "${1%%=*}" "${1#*=}" "${@:2}"
            ;;
        --jobs)
            (($# >= 2)) || die "--jobs needs a number"
            jobs=$2
            shift 2
            ;;
        --dir)
            (($# >= 2)) || die "--dir needs a directory"
            dir=$2
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer (got '$jobs')"
BIN=${DUALNET_BIN:-$REPO/build/dualnet}
ANALYZE=${DUALNET_ANALYZE:-$REPO/.venv/bin/dualnet-analyze}
PYTHON=${PYTHON:-python3}
[[ -x "$BIN" ]] || die "no dualnet binary at $BIN (build it, or set DUALNET_BIN)"
[[ -x "$ANALYZE" ]] || die "no dualnet-analyze at $ANALYZE (see analysis/README.md, or set DUALNET_ANALYZE)"

dir=${dir:-${DUALNET_RUNS_DIR:-$PWD/runs}/reproduce-$mode}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# The covop check's sizes: lite measures the slope over 2^13..2^17 in seconds; paper uses the
# 2^20 items of docs/covop.md. The small batches check simp only (the slope); the largest also
# the residue of infonce and triplet against tau.
if [[ "$mode" == lite ]]; then
    sweep_file=$REPO/jobs/paper-lite-sweep.toml
    seeds=(1 2 3)
    small_batches=(8192 32768)
    big_batch=131072
else
    sweep_file=$REPO/jobs/paper-sweep.toml
    seeds=(1 2 3 4 5)
    small_batches=(16384 65536 262144)
    big_batch=1048576
fi
taus=0.0001,0.001,0.01,0.1,1,10
covop_config=$REPO/configs/covop-bias-free.toml

# ------------------------------------------------------------------ 1. the sweep (claims 1-4)
start=$SECONDS
say "sweep $(basename "$sweep_file") -> $dir/sweep, $jobs at once"
"$PYTHON" "$REPO/jobs/sweep.py" run "$sweep_file" --dir "$dir/sweep" --jobs "$jobs" --bin "$BIN"
sweep_seconds=$((SECONDS - start))

# ------------------------------------------------------------------ 2. covop (claims 5-6)
# One covop report, written under a temporary name and renamed when complete, so that an
# existing report is always a finished one and is skipped.
covop_report() {
    local run=$1 file=$2
    shift 2
    if [[ -f "$file" ]]; then
        return 0
    fi
    "$BIN" covop "$run" "$@" file="$file.part" >"${file%.h5}.log" 2>&1 ||
        { say "covop failed, see ${file%.h5}.log"; return 1; }
    mv -f "$file.part" "$file"
}

# Seed S: the short bias-free simp training of configs/covop-bias-free.toml (the theorem's
# setting), then its reports. Each small batch reads its own stretch of the sample stream,
# so the points of the slope are independent.
covop_seed() {
    local seed=$1 d=$dir/covop/seed-$1 stream=1 batch
    mkdir -p "$d"
    if [[ ! -f "$d/train/timing.json" ]]; then
        "$BIN" train "$covop_config" "seed=$seed" "out=$d/train" overwrite=true >"$d/train.log" 2>&1 ||
            { say "covop training of seed $seed failed, see $d/train.log"; return 1; }
    fi
    for batch in "${small_batches[@]}"; do
        covop_report "$d/train" "$d/covop-b$batch.h5" "batch=$batch" losses=simp "stream=$stream"
        stream=$((stream + 1))
    done
    covop_report "$d/train" "$d/covop-b$big_batch.h5" "batch=$big_batch" losses=simp,infonce,triplet \
        "taus=$taus"
    say "covop seed $seed done"
}

start=$SECONDS
say "covop checks, seeds ${seeds[*]}, batch up to $big_batch -> $dir/covop, $jobs at once"
failed=0
running=0
for seed in "${seeds[@]}"; do
    if ((running >= jobs)); then
        wait -n || failed=1
        running=$((running - 1))
    fi
    covop_seed "$seed" &
    running=$((running + 1))
done
while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
done
((failed == 0)) || die "a covop check failed (logs in $dir/covop/seed-*/)"
covop_seconds=$((SECONDS - start))

# ------------------------------------------------------------------ 3. tables, figures, claims
start=$SECONDS
say "tables, figures and claims"
"$ANALYZE" table "$dir/sweep" --by hid,delta_lower,loss --csv "$dir/table.csv" >"$dir/table.md"
"$ANALYZE" table "$dir/sweep" --by hid,delta_lower,loss --exclude-collapsed >"$dir/table-without-collapsed.md"
"$ANALYZE" compare "$dir/sweep" --out "$dir/figures" --format png,pdf >"$dir/figures.txt"
# The per-epoch figures of one hid (the reference's 10), the paper's loss, every delta_lower.
shopt -s nullglob
plot_runs=("$dir"/sweep/runs/hid-10__*loss-ref_nce__seed-*)
shopt -u nullglob
if ((${#plot_runs[@]})); then
    "$ANALYZE" plot "${plot_runs[@]}" --out "$dir/figures/hid-10" --format png >>"$dir/figures.txt"
fi
"$ANALYZE" claims "$dir/sweep" --covop "$dir/covop" >"$dir/claims.md"
analysis_seconds=$((SECONDS - start))

cat <<EOF
reproduce.sh $mode: done (sweep ${sweep_seconds} s, covop ${covop_seconds} s, analysis ${analysis_seconds} s)
  claims:   $dir/claims.md
  table:    $dir/table.md (CSV: $dir/table.csv; without collapsed runs: $dir/table-without-collapsed.md)
  figures:  $dir/figures/ (list: $dir/figures.txt)
  runs:     $dir/sweep/runs/ (logs: $dir/sweep/logs/local/)
  covop:    $dir/covop/seed-*/covop-b*.h5 (trainings: $dir/covop/seed-*/train/)
EOF
