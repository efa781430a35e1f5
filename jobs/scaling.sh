#!/usr/bin/env bash
# Submit a strong and/or weak scaling study of dualnet as one Slurm job (jobs/scaling.sbatch).
#
#   jobs/scaling.sh [--kind strong|weak|both] [--ranks 1,2,4,8] [--ranks-per-node R]
#                   [--batch B] [--per-rank-batch b] [--steps N] [--results FILE]
#                   [--name NAME] [--wait] [--dry-run]
#                   [CONFIG.toml] [key=value ...] [-- SBATCH OPTIONS ...]
#
#   --kind            strong: global batch B fixed while ranks grow; weak: per-rank batch b
#                     fixed (global batch b*ranks); both (default) runs strong then weak
#   --ranks           rank counts, ascending; the first is the efficiency baseline (default 1,2)
#   --ranks-per-node  ranks per node (default $DUALNET_RANKS_PER_NODE, else the largest rank
#                     count, i.e. one node); a point uses ceil(ranks / R) nodes
#   --batch           strong-scaling global batch (default 1024; divisible by every rank count)
#   --per-rank-batch  weak-scaling batch per rank (default 256)
#   --steps           training steps per epoch for every point (default 200): each run uses
#                     samples_per_pass = steps * global batch, epochs from the config (set
#                     epochs=1 for a quick study)
#   --results         CSV that rows are appended to (default
#                     $DUALNET_RUNS_DIR/scaling/results.csv; shared by all studies)
#   --name            study name (default scaling): run directories go to
#                     $DUALNET_RUNS_DIR/scaling/<name>-<job id>/
#   --wait            wait for the job to end (sbatch --wait) and exit with its status
#   --dry-run         print the sbatch command only
# Everything after `--` is passed to sbatch (e.g. -- --gpus-per-node=4 --time=00:30:00).
# The job asks for max(nodes) nodes and max(ranks) tasks; each point runs as a job step of its
# own size. Row format: see jobs/scaling.sbatch; docs/cluster.md explains the columns.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DUALNET_HOME=${DUALNET_HOME:-$(cd "$here/.." && pwd)}
export DUALNET_HOME
DN_LOG_TAG=scaling.sh
# shellcheck source-path=SCRIPTDIR source=lib/dualnet-job.sh
source "$here/lib/dualnet-job.sh"

kind=both ranks_list=1,2 rpn="" batch=1024 per_rank=256 steps=200 results="" name=scaling
wait_flag=() dry=0 args=() sbatch_args=()
while (($#)); do
    case "$1" in
        -h|--help) dn_usage "${BASH_SOURCE[0]}"; exit 0 ;;
        --kind) kind=${2:?}; shift 2 ;;
        --ranks) ranks_list=${2:?}; shift 2 ;;
        --ranks-per-node) rpn=${2:?}; shift 2 ;;
        --batch) batch=${2:?}; shift 2 ;;
        --per-rank-batch) per_rank=${2:?}; shift 2 ;;
        --steps) steps=${2:?}; shift 2 ;;
        --results) results=${2:?}; shift 2 ;;
        --name) name=${2:?}; shift 2 ;;
        --wait) wait_flag=(--wait); shift ;;
        --dry-run) dry=1; shift ;;
        --) shift; sbatch_args=("$@"); break ;;
        --*) dn_die 2 "unknown option '$1' (see --help)" ;;
        *.toml)
            [[ -r "$1" ]] || dn_die 2 "config file '$1' is not readable"
            args+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
        *=*) args+=("$1"); shift ;;
        *) dn_die 2 "unexpected argument '$1'" ;;
    esac
done

case "$kind" in strong|weak|both) ;; *) dn_die 2 "--kind must be strong, weak or both" ;; esac
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || dn_die 2 "--name: letters, digits, '.', '_', '-' only"
for v in "$batch" "$per_rank" "$steps"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || dn_die 2 "--batch, --per-rank-batch and --steps take positive integers"
done
IFS=, read -r -a ranks <<<"$ranks_list"
((${#ranks[@]} > 0)) || dn_die 2 "--ranks is empty"
prev=0
for r in "${ranks[@]}"; do
    [[ "$r" =~ ^[1-9][0-9]*$ ]] || dn_die 2 "--ranks: '$r' is not a positive integer"
    ((r > prev)) || dn_die 2 "--ranks must be strictly ascending"
    prev=$r
done
max_ranks=$prev

dn_load_site
rpn=${rpn:-${DUALNET_RANKS_PER_NODE:-$max_ranks}}
[[ "$rpn" =~ ^[1-9][0-9]*$ ]] || dn_die 2 "ranks per node must be a positive integer (got '$rpn')"
results=${results:-$DUALNET_RUNS_DIR/scaling/results.csv}
[[ "$results" == /* ]] || results="$PWD/$results"

points=()
max_nodes=1
add_points() {
    local k=$1 r n b
    for r in "${ranks[@]}"; do
        n=$(((r + rpn - 1) / rpn))
        ((n > max_nodes)) && max_nodes=$n
        if [[ "$k" == strong ]]; then
            ((batch % r == 0)) || dn_die 2 "strong scaling: --batch $batch is not divisible by $r ranks"
            b=$batch
        else
            b=$((per_rank * r))
        fi
        points+=(--point "$k:$r:$n:$b")
    done
}
[[ "$kind" == weak ]] || add_points strong
[[ "$kind" == strong ]] || add_points weak

mkdir -p "$DUALNET_RUNS_DIR/scaling" "$(dirname "$results")"
# The job id is not known before submission: name the study directory by time and pid.
study_dir="$DUALNET_RUNS_DIR/scaling/$name-$(date +%Y%m%d-%H%M%S)-$$"

cmd=("$here/submit.sh" "--job-name=$name" "--nodes=$max_nodes" "--ntasks=$max_ranks"
    "--output=$DUALNET_RUNS_DIR/scaling/slurm-%x-%j.out" "${wait_flag[@]}" "${sbatch_args[@]}"
    "$here/scaling.sbatch" --results "$results" --dir "$study_dir" --steps "$steps"
    "${points[@]}" "${args[@]}")
if ((dry)); then
    printf '%q ' "${cmd[@]}"
    printf '\n'
    exit 0
fi
echo "scaling study '$name': ${#ranks[@]} rank counts, kind $kind, $max_nodes node(s) x up to $max_ranks ranks"
echo "  runs in $study_dir, rows appended to $results"
exec "${cmd[@]}"
