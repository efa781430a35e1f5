#!/usr/bin/env bash
# Multi-node tests of dualnet and its job scripts on the namespace cluster of multinode-up.sh
# (a head and 3 slurmd nodes on this machine; cross-node MPI traffic is TCP between them).
#
#   tests/slurm/test_multinode.sh PART          PART: correctness | jobs | scaling | faults
#
#   correctness  `srun -N2` reaches two distinct nodes; dualnet over 2 nodes x 1 and x 2 ranks,
#                through jobs/train.sbatch with srun (pmix) and with mpirun in the
#                allocation: every metrics dataset but samples_per_s byte-identical to a
#                1-rank run on this machine; timing.json and the header say 2 nodes and the
#                ranks per node; local ranks are 0..R-1 on each node. A run with another seed
#                must be reported as different (the comparison can fail).
#   jobs         a 4-task sweep runs its tasks on more than one node; a 2-node train.sbatch
#                job that gets the time-limit warning (USR1 to the batch shell, what
#                --signal=B:USR1 delivers) checkpoints, requeues itself, resumes on 2 nodes
#                and finishes with metrics identical to an uninterrupted run
#   scaling      jobs/scaling.sh strong and weak over 1, 2 and 3 nodes (1 rank per node):
#                6 CSV rows with the right node counts; dualnet-analyze scaling draws them
#   faults       during a 2-node job, SIGKILL one rank; then, in another job, SIGKILL one
#                node's slurmd: every other rank exits within 30 s (measured), the job ends
#                FAILED with a message naming the failure, and resubmitting resumes from the
#                checkpoint to metrics identical to an uninterrupted run
#
# The cluster is brought up when it is not running (and then torn down at the end); under
# ctest the multinode.up/multinode.down fixtures do that once for all parts.
# Environment: DUALNET_BIN (default <repo>/build/dualnet), DUALNET_PYTHON (a python with
# h5py, default <repo>/.venv/bin/python), DUALNET_TEST_KEEP=1 keeps the work directory.
# Exit status: 0 passed, 77 skipped (not root, no namespaces, no Slurm), else failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=multinode-lib.sh
source "$here/multinode-lib.sh"
bin=${DUALNET_BIN:-$repo/build/dualnet}
py=${DUALNET_PYTHON:-$repo/.venv/bin/python}
part=${1:-}
readonly SKIP=77

log() { printf '[multinode %s %(%T)T] %s\n' "$part" -1 "$*"; }
skip() { log "SKIPPED: $*"; exit "$SKIP"; }
die() { log "FAIL: $*"; exit 1; }

case "$part" in correctness|jobs|scaling|faults) ;; *) sed -n '2,29p' "$0" >&2; exit 2 ;; esac
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, Slurm daemons)"
for tool in ip nsenter unshare sbatch srun slurmd munged mpirun; do
    command -v "$tool" >/dev/null 2>&1 || skip "'$tool' not installed (slurm-wlm munge openmpi-bin iproute2)"
done
[[ -x "$bin" ]] || die "dualnet binary '$bin' not found (build it, or set DUALNET_BIN)"
"$py" -c 'import h5py' 2>/dev/null || die "$py cannot import h5py (run cmake/setup-debian.sh)"

started=0
if [[ -z "$(mn_keeper head)" ]]; then
    rc=0
    "$here/multinode-up.sh" || rc=$?
    ((rc == 0)) || { ((rc == SKIP)) && skip "multinode-up.sh cannot run here"; die "multinode-up.sh failed"; }
    started=1
fi

work=$(mktemp -d "/tmp/dualnet-mn-$part.XXXXXX")
prefix="dnmn$$"
cleanup() {
    local rc=$?
    set +e
    # This script's background runs and submissions first, then its jobs, whatever their state.
    local bg=() p
    mapfile -t bg < <(jobs -p)
    for p in "${bg[@]}"; do
        pkill -TERM -P "$p" 2>/dev/null
        kill -TERM "$p" 2>/dev/null
    done
    wait 2>/dev/null
    timeout 10 "$here/multinode-run.sh" head squeue -h -o '%i %j' 2>/dev/null |
        awk -v p="$prefix" 'index($2, p) == 1 || index($2, "sweep-" p) == 1 { print $1 }' |
        while read -r id; do timeout 10 "$here/multinode-run.sh" head scancel "$id"; done
    if ((started)); then "$here/multinode-down.sh" >/dev/null || log "warning: multinode-down.sh failed"; fi
    if ((rc == 0)) && [[ "${DUALNET_TEST_KEEP:-0}" != 1 ]]; then rm -rf "$work"; else log "work directory kept: $work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Site settings as a user would give them; one thread per rank (all nodes share the cores).
printf '%s\n' "DUALNET_BIN=$bin" "DUALNET_RUNS_DIR=$work/runs" 'DUALNET_LAUNCHER="srun --mpi=pmix"' >"$work/site.env"
# Open MPI busy-polls unless told the node is oversubscribed (srun does not tell it): yield.
export DUALNET_SITE_ENV="$work/site.env" DUALNET_HOME="$repo" OMP_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
# The direct sruns below need what jobs/lib/dualnet-job.sh sets for its own (see there).
export SLURM_PMIX_FENCE_BARRIER=true
unset DUALNET_BIN DUALNET_RUNS_DIR DUALNET_LAUNCHER DUALNET_PARTITION DUALNET_ACCOUNT DUALNET_SBATCH_ARGS
cd "$work"

on() { "$here/multinode-run.sh" "$@"; } # on MACHINE CMD...
compare() { "$py" "$here/compare_metrics.py" "$@"; }
# job_field ID FIELD: a field of `scontrol show job` (empty when the job is unknown).
job_field() { { timeout 10 "$here/multinode-run.sh" head scontrol -o show job "$1" 2>/dev/null || true; } | grep -oE "(^| )$2=[^ ]+" | cut -d= -f2 || true; }
json() { "$py" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(" ".join(map(str,v)) if isinstance(v,list) else v)' "$1" "$2"; }
# submit NAME TIMEOUT SBATCH-ARGS... -- SCRIPT-ARGS...: jobs/submit.sh train.sbatch from the
# head, output in $work/NAME-<job id>.out, and wait for the job's final state (through
# requeues); sets rc: the job's exit code, 1 if it ended otherwise than COMPLETED with 0, 124
# after TIMEOUT seconds. Polls every 0.5 s (sbatch --wait polls every 10 s or so).
submit() {
    local name=$1 limit=$2
    shift 2
    local opts=()
    while (($#)) && [[ "$1" != -- ]]; do opts+=("$1"); shift; done
    shift
    rc=0
    timeout 30 "$here/multinode-run.sh" head "$repo/jobs/submit.sh" "--job-name=$prefix-$name" \
        "--output=$work/$name-%j.out" "${opts[@]}" "$repo/jobs/train.sbatch" "$@" >"$work/$name.submit" 2>&1 || rc=$?
    local id
    id=$(job_id "$name")
    [[ $rc -eq 0 && -n "$id" ]] || { rc=1; cat "$work/$name.submit"; return 0; }
    local t0=$SECONDS st
    while :; do
        st=$(job_field "$id" JobState)
        case "$st" in
            COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) break ;;
        esac
        ((SECONDS - t0 < limit)) || { rc=124; return 0; }
        sleep 0.5
    done
    rc=$(job_field "$id" ExitCode)
    rc=${rc%%:*}
    [[ "$st" == COMPLETED || "$rc" != 0 ]] || rc=1
}
joblog() { cat "$work/$1"-[0-9]*.out 2>/dev/null || true; }
job_id() { sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$work/$1.submit" | head -n 1; }
# reference CFG...: a 1-rank run on this machine (outside the cluster); prints its directory.
reference() {
    local d
    d="$work/ref-$(printf '%s ' "$@" | md5sum | cut -c1-8)"
    [[ -s "$d/timing.json" ]] || "$bin" train "$@" "out=$d" overwrite=true >"$d.log" 2>&1 || die "reference run failed: $(tail -n 3 "$d.log")"
    echo "$d"
}
# check_layout RUN NODES RANKS_PER_NODE: timing.json's layout and the local ranks per host.
check_layout() {
    local run=$1 nodes=$2 rpn=$3
    [[ -s "$run/timing.json" ]] || { echo "no $run/timing.json"; return 1; }
    [[ "$(json "$run/timing.json" nodes)" == "$nodes" ]] || { echo "$run: timing.json nodes $(json "$run/timing.json" nodes), want $nodes"; return 1; }
    [[ "$(json "$run/timing.json" ranks_per_node)" == "$rpn" && "$(json "$run/timing.json" min_ranks_per_node)" == "$rpn" ]] ||
        { echo "$run: timing.json ranks_per_node is not $rpn"; return 1; }
    # Local ranks must be 0..rpn-1 on every host, and the hosts the cluster's nodes.
    "$py" - "$run/timing.json" "$nodes" "$rpn" <<'PY' || return 1
import json, sys
t, nodes, rpn = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
by_host = {}
for host, lr in zip(t["hosts"], t["local_ranks"], strict=True):
    by_host.setdefault(host, []).append(lr)
ok = (len(t["hosts"]) == t["ranks"] and len(by_host) == nodes and all(h.startswith("n") for h in by_host)
      and all(sorted(v) == list(range(rpn)) for v in by_host.values()))
print(("layout: " if ok else "bad layout: ") + "; ".join(f"{h} local ranks {v}" for h, v in sorted(by_host.items())))
sys.exit(0 if ok else 1)
PY
}

tiny=(depth=3 hid=4 samples_per_pass=4096 batch=64 epochs=2)
# Jobs get --time=00:15:00: train.sbatch asks for USR1 300 s before the limit (checked every
# 30 s), so a shorter limit would send the time-limit warning at once.

# ----------------------------------------------------------------------------- parts
part_correctness() {
    local hosts
    hosts=$(timeout 60 "$here/multinode-run.sh" head srun -N2 --ntasks-per-node=1 hostname | sort)
    [[ $(sort -u <<<"$hosts" | wc -l) == 2 && "$(tr '\n' ' ' <<<"$hosts")" =~ ^n[0-9]\ n[0-9]\ $ ]] ||
        die "srun -N2 hostname gave '$(tr '\n' ' ' <<<"$hosts")', want two distinct nodes"
    log "ok: srun -N2 reaches $(tr '\n' ' ' <<<"$hosts")"

    local ref other
    ref=$(reference "${tiny[@]}")
    # The comparison itself must be able to fail: another seed is reported as different.
    other=$(reference "${tiny[@]}" seed=2)
    if compare "$ref/metrics.h5" "$other/metrics.h5" >/dev/null 2>&1; then
        die "compare_metrics.py finds a run with another seed identical: the comparison cannot fail"
    fi
    log "ok: a run with another seed is reported as different"

    # Four 2-node jobs at once: srun (pmix) and mpirun in the allocation, 1 and 2 ranks per node.
    local cases=(srun:1 srun:2 mpirun:1 mpirun:2) c launcher rpn pids=()
    for c in "${cases[@]}"; do
        launcher=${c%:*} rpn=${c#*:}
        (
            [[ $launcher == srun ]] || export DUALNET_LAUNCHER="mpirun --allow-run-as-root --oversubscribe"
            submit "$launcher-$rpn" 240 --nodes=2 "--ntasks-per-node=$rpn" --time=00:15:00 -- "${tiny[@]}"
            exit "$rc"
        ) &
        pids+=($!)
    done
    local i failed=0 run
    for i in "${!cases[@]}"; do
        c=${cases[$i]} launcher=${c%:*} rpn=${c#*:}
        run="$work/runs/$prefix-$launcher-$rpn"
        if ! wait "${pids[$i]}"; then
            log "FAIL: $launcher 2 nodes x $rpn: job failed"
            cat "$work/$launcher-$rpn.submit"
            joblog "$launcher-$rpn" | tail -n 20
            failed=1
            continue
        fi
        if ! joblog "$launcher-$rpn" | grep -q "launch: $launcher "; then
            log "FAIL: $launcher 2 nodes x $rpn: the job did not launch with $launcher"
            failed=1
        fi
        if ! joblog "$launcher-$rpn" | grep -qE "^nodes +2 x $rpn ranks per node$"; then
            log "FAIL: $launcher 2 nodes x $rpn: the header has no 'nodes 2 x $rpn ranks per node' line"
            failed=1
        fi
        if ! check_layout "$run" 2 "$rpn"; then
            log "FAIL: $launcher 2 nodes x $rpn: layout"
            failed=1
            continue
        fi
        if ! compare "$ref/metrics.h5" "$run/metrics.h5"; then
            log "FAIL: $launcher 2 nodes x $rpn: metrics differ from the 1-rank run"
            failed=1
            continue
        fi
        log "ok: $launcher 2 nodes x $rpn ranks: metrics identical to 1 rank; header and layout right"
    done
    ((failed == 0)) || die "cross-node correctness"
}

# dualnet_pids RUN: pids of the dualnet processes of run directory RUN on any cluster node.
dualnet_pids() {
    local m p
    for m in $(mn_machines); do
        for p in $(ip netns pids "$(mn_ns "$m")" 2>/dev/null); do
            [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == dualnet ]] || continue
            tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "=$1 " && echo "$p"
        done
    done
    return 0
}
# node_of PID: the cluster machine whose network namespace PID is in.
node_of() {
    local m
    for m in $(mn_machines); do
        ip netns pids "$(mn_ns "$m")" 2>/dev/null | grep -qx "$1" && { echo "$m"; return 0; }
    done
    return 0
}
# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; false after SECONDS.
wait_for() {
    local limit=$1 t0=$SECONDS
    shift
    until "$@"; do
        ((SECONDS - t0 < limit)) || return 1
        sleep 0.1
    done
}
# ms_since T0_NS: milliseconds since date +%s%N gave T0_NS.
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
has_checkpoint() { [[ -s "$1/checkpoints/latest" ]]; }
running_on_2() { [[ $(dualnet_pids "$1" | wc -l) -ge 2 ]]; }
no_dualnet() { [[ -z "$(dualnet_pids "$1")" ]]; }
# ms_per_epoch CFG...: time per epoch of a 2-node run on the cluster (difference of 10 and 2
# epochs, so that start-up does not count), for sizing runs that must still be running when
# a fault comes.
ms_per_epoch() {
    local t0 t1 t2 e
    for e in 2 10; do
        t0=$(date +%s%N)
        # Once more on failure: a bare srun has no start-up retry (jobs/lib/dualnet-job.sh has).
        timeout 120 "$here/multinode-run.sh" head srun -N2 --ntasks-per-node=1 --kill-on-bad-exit=1 "$bin" train "$@" \
            "epochs=$e" out="$work/calib" overwrite=true >"$work/calib.log" 2>&1 ||
            timeout 120 "$here/multinode-run.sh" head srun -N2 --ntasks-per-node=1 --kill-on-bad-exit=1 "$bin" train "$@" \
                "epochs=$e" out="$work/calib" overwrite=true >"$work/calib.log" 2>&1 ||
            die "calibration run failed: $(tail -n 5 "$work/calib.log")"
        t1=$(date +%s%N)
        if ((e == 2)); then t2=$((t1 - t0)); fi
    done
    local ms=$(((t1 - t0 - t2) / 8000000))
    echo $((ms > 1 ? ms : 1))
}

part_jobs() {
    # A sweep of 4 one-task runs, all at once: 2 CPUs per node, so they need 2 nodes.
    cat >"$work/mn-sweep.toml" <<TOML
name = "$prefix"
seeds = [1, 2]
[set]
depth = 3
samples_per_pass = 4096
batch = 64
epochs = 2
[axes]
hid = [4, 6]
[slurm]
time = "00:15:00"
TOML
    local sdir="$work/sweep" rc=0
    timeout 240 "$here/multinode-run.sh" head python3 "$repo/jobs/sweep.py" submit "$work/mn-sweep.toml" --dir "$sdir" \
        --throttle 4 --wait >"$work/sweep.submit" 2>&1 || rc=$?
    ((rc == 0)) || { cat "$work/sweep.submit"; tail -n 5 "$sdir"/logs/*.out; die "the sweep failed (status $rc)"; }
    local t d hosts
    for t in 0 1 2 3; do
        d=$(awk -F '\t' -v t="$t" '$1 == t { print $2 }' "$sdir/manifest.tsv")
        [[ -s "$d/timing.json" ]] || die "sweep task $t: no $d/timing.json"
    done
    # dn_prepare_job logs "host NAME" for every task.
    hosts=$(cat "$sdir"/logs/*.out | sed -n 's/.*, host \([^,]*\), site file.*/\1/p' | sort -u | tr '\n' ' ')
    [[ $(wc -w <<<"$hosts") -ge 2 ]] || die "the sweep's 4 tasks all ran on '$hosts'; want more than one node"
    log "ok: the sweep's 4 tasks ran on nodes $hosts"

    # Requeue across nodes: a 2-node run long enough (~20 s) to be stopped in the middle.
    local ms epochs
    ms=$(ms_per_epoch depth=3 hid=4 batch=64 samples_per_pass=32000)
    epochs=$((15000 / ms))
    ((epochs >= 20)) || epochs=20
    local cfg=(depth=3 hid=4 batch=64 samples_per_pass=32000 "epochs=$epochs")
    local ref
    reference "${cfg[@]}" >"$work/ref.path" &
    local ref_pid=$!
    local name=requeue run="$work/runs/$prefix-requeue"
    (
        submit "$name" 300 --nodes=2 --ntasks-per-node=1 --time=00:15:00 -- "${cfg[@]}"
        exit "$rc"
    ) &
    local sub_pid=$!
    wait_for 120 has_checkpoint "$run" || die "the requeue run wrote no checkpoint in 120 s"
    wait_for 30 running_on_2 "$run" || die "the requeue run is not running 2 ranks"
    local id
    id=$(job_id "$name")
    [[ -n "$id" ]] || die "no job id for the requeue job"
    # What --signal=B:USR1@SECS delivers before the time limit: USR1 to the batch shell.
    on head scancel --batch --signal=USR1 "$id" || die "scancel --batch --signal=USR1 $id failed"
    log "sent the time-limit warning (USR1) to job $id, ${epochs}-epoch run"
    wait "$sub_pid" || rc=$?
    local out
    out=$(joblog "$name")
    ((rc == 0)) || { grep -v '^epoch' <<<"$out" | tail -n 30; die "the requeued 2-node job ended with status $rc"; }
    grep -q "time-limit warning (USR1)" <<<"$out" || die "the warning did not reach the batch script"
    grep -q "requeueing job $id" <<<"$out" || die "the job did not requeue itself"
    grep -q "resuming run" <<<"$out" || die "the requeued job did not resume"
    [[ $(grep -cE '^nodes +2 x 1 ranks per node$' <<<"$out") -ge 2 ]] || die "the job did not run on 2 nodes both times"
    wait "$ref_pid" || die "the reference run failed"
    ref=$(<"$work/ref.path")
    check_layout "$run" 2 1 || die "the resumed run's layout"
    compare "$ref/metrics.h5" "$run/metrics.h5" || die "the requeued and resumed run's metrics differ from an uninterrupted run"
    log "ok: the 2-node job checkpointed on USR1, requeued, resumed on 2 nodes; metrics identical to an uninterrupted run"
}

part_scaling() {
    local csv="$work/scaling.csv" rc=0
    timeout 300 "$here/multinode-run.sh" head "$repo/jobs/scaling.sh" --name "$prefix-scaling" --ranks 1,2,3 \
        --ranks-per-node 1 --batch 384 --per-rank-batch 128 --steps 40 --results "$csv" --wait \
        epochs=1 depth=3 hid=4 -- --time=00:15:00 >"$work/scaling.submit" 2>&1 || rc=$?
    ((rc == 0)) || { cat "$work/scaling.submit" "$work"/runs/scaling/slurm-*.out; die "the scaling study failed (status $rc)"; }
    local got
    got=$(tail -n +2 "$csv" | cut -d, -f1-5 | tr '\n' ' ')
    [[ "$got" == "strong,1,1,384,384 strong,2,2,384,192 strong,3,3,384,128 weak,1,1,128,128 weak,2,2,256,128 weak,3,3,384,128 " ]] ||
        { cat "$csv"; die "unexpected rows (kind,ranks,nodes,global,per-rank): $got"; }
    "$py" - "$csv" <<'PY' || die "bad numbers in $csv"
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    assert float(r["samples_per_s"]) > 0 and float(r["step_time_s"]) > 0 and float(r["efficiency"]) > 0, r
PY
    local analyze
    analyze="$(dirname "$py")/dualnet-analyze"
    [[ -x "$analyze" ]] || die "no $analyze (run cmake/setup-debian.sh)"
    "$analyze" scaling --out "$work/scaling-plots" "$csv" >"$work/analyze.log" 2>&1 || { cat "$work/analyze.log"; die "dualnet-analyze scaling failed"; }
    local figs
    figs=$(find "$work/scaling-plots" -name '*.png' -size +1k | wc -l)
    ((figs >= 1)) || { ls -l "$work/scaling-plots"; die "dualnet-analyze scaling drew no figure"; }
    [[ -s "$work/scaling-plots/scaling.csv" ]] || die "dualnet-analyze scaling wrote no scaling.csv"
    log "ok: strong and weak scaling over 1, 2 and 3 nodes; $figs figure(s) drawn"
    column -t -s, "$csv"
}

# fault NAME KIND RUN: with the job of NAME running RUN on 2 nodes, SIGKILL (KIND=rank) one rank
# on its second node, or (KIND=slurmd) that node's slurmd; measure until no rank of RUN is
# left; sets fault_ms.
fault() {
    local name=$1 kind=$2 run=$3 victim="" node p pids
    wait_for 120 has_checkpoint "$run" || die "$kind fault: the run wrote no checkpoint in 120 s"
    wait_for 60 running_on_2 "$run" || die "$kind fault: the run is not running on 2 nodes"
    # Let it write at least one checkpoint of its own (a resumed run already has one).
    sleep 1
    pids=$(dualnet_pids "$run")
    for p in $pids; do
        node=$(node_of "$p")
        [[ "$node" == "$(node_of "$(head -n 1 <<<"$pids")")" ]] || { victim=$p; break; }
    done
    [[ -n "$victim" ]] || die "$kind fault: the ranks of $run are not on two nodes"
    if [[ $kind == slurmd ]]; then
        victim=$(for p in $(ip netns pids "$(mn_ns "$node")"); do [[ "$(cat "/proc/$p/comm" 2>/dev/null)" != slurmd ]] || echo "$p"; done)
        [[ "$victim" =~ ^[0-9]+$ ]] || die "no slurmd on $node"
    fi
    local t0
    t0=$(date +%s%N)
    kill -KILL "$victim"
    wait_for 60 no_dualnet "$run" || die "$kind fault: ranks of $run still running 60 s after SIGKILL to the $kind on $node"
    fault_ms=$(ms_since "$t0")
    fault_node=$node
    log "$kind fault on $node: every rank gone $fault_ms ms after the SIGKILL"
}

part_faults() {
    # A rank that dies by a signal during start-up (what Open MPI 4.1's TCP race does now and
    # then, docs/cluster.md): the other rank must not hang, and the job script launches once more.
    local crash="$work/crash-once" ref0
    printf '%s\n' '#!/bin/bash' '# The first rank to start dies by SIGSEGV before dualnet runs (mkdir is atomic).' \
        "mkdir '$work/crashed' 2>/dev/null && kill -SEGV \$\$" "exec '$bin' \"\$@\"" >"$crash"
    chmod +x "$crash"
    ref0=$(reference "${tiny[@]}")
    (
        export DUALNET_BIN="$crash"
        submit startup 180 --nodes=2 --ntasks-per-node=1 --time=00:15:00 -- "${tiny[@]}"
        exit "$rc"
    ) || { joblog startup | grep -v '^epoch' | tail -n 20; die "a job whose rank died at start-up failed"; }
    joblog startup | grep -q "the ranks died at start-up (status 1[0-9][0-9], SIG[A-Z]*: .*launching once more" ||
        { joblog startup | grep -v '^epoch' | tail -n 20; die "no retry after a rank died at start-up"; }
    compare "$ref0/metrics.h5" "$work/runs/$prefix-startup/metrics.h5" || die "the relaunched run differs"
    log "ok: a rank killed by SIGSEGV at start-up: the job launched once more and the run is identical"

    # One run, interrupted twice: its length covers node-failure detection (~15 s) with room.
    local ms epochs
    ms=$(ms_per_epoch depth=3 hid=4 batch=64 samples_per_pass=32000)
    epochs=$((35000 / ms))
    ((epochs >= 40)) || epochs=40
    log "run of $epochs epochs (${ms} ms per epoch on 2 nodes)"
    local cfg=(depth=3 hid=4 batch=64 samples_per_pass=32000 "epochs=$epochs")
    reference "${cfg[@]}" >"$work/ref.path" &
    local ref_pid=$! run="$work/runs/$prefix-fault" rc out id state failed=0 times=()
    local bound_ms=30000

    local kind
    for kind in rank slurmd; do
        (
            submit "fault-$kind" 300 --nodes=2 --ntasks-per-node=1 --no-requeue --time=00:15:00 -J "$prefix-fault" -- "${cfg[@]}"
            exit "$rc"
        ) &
        local sub_pid=$!
        fault "fault-$kind" "$kind" "$run"
        times+=("$kind:$fault_ms")
        ((fault_ms <= bound_ms)) || { log "FAIL: $kind fault: ranks took $fault_ms ms to exit (bound $bound_ms)"; failed=1; }
        rc=0
        wait "$sub_pid" || rc=$?
        id=$(job_id "fault-$kind")
        wait_for 30 bash -c "! $(printf '%q ' "$here/multinode-run.sh") head squeue -h -j $id | grep -q ." || true
        state=$(job_field "$id" JobState)
        out=$(joblog "fault-$kind")
        if [[ $kind == rank ]]; then
            [[ "$state" == FAILED ]] || { log "FAIL: after a killed rank job $id is '$state', want FAILED"; failed=1; }
            grep -q "dualnet failed with status 137, SIGKILL: a rank died or was killed" <<<"$out" ||
                { log "FAIL: no clear message after a killed rank:"; grep -v '^epoch' <<<"$out" | tail -n 8; failed=1; }
        else
            [[ "$state" == NODE_FAIL ]] || { log "FAIL: after a dead slurmd job $id is '$state', want NODE_FAIL"; failed=1; }
            grep -q "terminated by Slurm (JobState=[A-Z_]* Reason=NodeDown: a node of this job failed)" <<<"$out" ||
                { log "FAIL: no clear message after a node failure:"; grep -v '^epoch' <<<"$out" | tail -n 8; failed=1; }
            # Bring the node back (ReturnToService=2 returns it once its slurmd registers).
            on "$fault_node" slurmd || die "could not restart slurmd on $fault_node"
            wait_for 60 bash -c "$(printf '%q ' "$here/multinode-run.sh") head sinfo -h -n $fault_node -o %T | grep -qxE 'idle|mixed'" ||
                die "$fault_node did not come back after its slurmd restarted"
        fi
        ((rc != 0)) || { log "FAIL: submitting the $kind-fault job returned 0"; failed=1; }
        log "job $id ended $state: $(grep -E 'dualnet failed|terminated by Slurm' <<<"$out" | tail -n 1 | sed 's/^\[[^]]*\] //')"
    done
    ((failed == 0)) || die "faults"

    # Resubmitting the same job resumes the twice-interrupted run to the end.
    submit fault-resume 300 --nodes=2 --ntasks-per-node=1 --time=00:15:00 -J "$prefix-fault" -- "${cfg[@]}"
    out=$(joblog fault-resume)
    ((rc == 0)) || { grep -v '^epoch' <<<"$out" | tail -n 20; die "the resumed run failed (status $rc)"; }
    grep -q "resuming run" <<<"$out" || die "the last job did not resume"
    wait "$ref_pid" || die "the reference run failed"
    compare "$(<"$work/ref.path")/metrics.h5" "$run/metrics.h5" || die "the run resumed after the faults differs from an uninterrupted run"
    log "ok: faults (${times[*]} ms to exit, bound $bound_ms ms); the run resumed to identical metrics"
}

"part_$part"
log "passed"
