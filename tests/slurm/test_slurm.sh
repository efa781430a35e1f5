#!/usr/bin/env bash
# End-to-end test of the Slurm job scripts against a real one-node Slurm cluster and the real
# dualnet binary.
#
#   tests/slurm/test_slurm.sh
#
# Brings the cluster up with tests/slurm/slurm-up.sh (root, packages slurm-wlm and munge),
# then, with `sbatch --wait` throughout:
#   train    jobs/train.sbatch on 2 ranks: exit 0, complete metrics.h5 and timing.json;
#            resubmitted under the same name: skipped as finished; a bad key: exit status 2
#   sweep    a 4-task sweep through jobs/sweep.py: all runs finish; after one run directory
#            is deleted, a second submission runs only that task; a third submits nothing
#   scaling  jobs/scaling.sh with 1 and 2 ranks, strong and weak: 4 CSV rows
#   requeue  jobs/train.sbatch with a 1-minute limit and --signal=B:USR1@20: Slurm's warning
#            makes dualnet checkpoint, the job requeues itself and resumes (the test then
#            gives the requeued job 10 minutes), and the run completes with every epoch
#            recorded once; the same for a one-task sweep, whose array task must requeue
#            itself alone
# The parts run concurrently. Daemons this script started are stopped at the end (by
# pid, tests/slurm/slurm-down.sh).
#
# Environment: DUALNET_BIN (default <repo>/build/dualnet); DUALNET_TEST_KEEP=1 keeps the work
# directory. Exit status: 0 passed, 77 skipped (Slurm could not be brought up), else failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${DUALNET_BIN:-$repo/build/dualnet}
readonly SKIP=77

log() { printf '[test_slurm %(%T)T] %s\n' -1 "$*"; }
skip() { log "SKIPPED: $*"; exit "$SKIP"; }

failures=()
fail() { log "FAIL: $*"; failures+=("$*"); }
pass() { log "ok: $*"; }

# ---------------------------------------------------------------- prerequisites and cluster
[[ $(id -u) -eq 0 ]] || skip "needs root to start munged/slurmctld/slurmd"
for tool in sbatch squeue scontrol slurmctld slurmd munged; do
    command -v "$tool" >/dev/null 2>&1 || skip "'$tool' not installed (apt-get install --no-install-recommends slurm-wlm munge)"
done
if [[ ! -x "$bin" ]]; then
    log "FAIL: dualnet binary '$bin' not found (build it, or set DUALNET_BIN)"
    exit 1
fi
command -v python3 >/dev/null 2>&1 || { log "FAIL: python3 is needed (jobs/sweep.py)"; exit 1; }

started_cluster=0
ctld_pid=$(cat /run/slurmctld.pid 2>/dev/null || true)
if [[ "$ctld_pid" =~ ^[0-9]+$ ]] && [[ -r "/proc/$ctld_pid/stat" ]] && ! sed 's/^.*) //' "/proc/$ctld_pid/stat" | grep -q '^Z'; then
    log "slurmctld already running: using it and leaving it running"
else
    started_cluster=1
fi

work=$(mktemp -d /tmp/dualnet-slurm-test.XXXXXX)
job_prefix="dnci$$"
cleanup() {
    local rc=$?
    set +e
    # Cancel anything of ours still queued (e.g. after a timeout).
    timeout 10 squeue -h -o '%i %j' 2>/dev/null | awk -v p="$job_prefix" 'index($2, p) == 1 { print $1 }' |
        while read -r id; do scancel "$id"; done
    if ((started_cluster)); then
        "$here/slurm-down.sh" || log "warning: slurm-down.sh reported a problem"
    fi
    if ((rc == 0 || rc == SKIP)) && [[ "${DUALNET_TEST_KEEP:-0}" != 1 ]]; then
        rm -rf "$work"
    else
        log "work directory kept: $work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! up_out=$("$here/slurm-up.sh" --timeout 60 2>&1); then
    printf '%s\n' "$up_out"
    skip "the Slurm cluster could not be brought up"
fi
printf '%s\n' "$up_out"

# Site settings through a site file, as a user would set them.
cat >"$work/site.env" <<EOF
DUALNET_BIN=$bin
DUALNET_RUNS_DIR=$work/runs
DUALNET_LAUNCHER="srun --mpi=pmix"
EOF
export DUALNET_SITE_ENV="$work/site.env"
unset DUALNET_HOME DUALNET_RUNS_DIR DUALNET_LAUNCHER DUALNET_PARTITION DUALNET_ACCOUNT
export DUALNET_BIN="$bin"
cd "$work"

tiny=(depth=3 hid=4 samples_per_pass=512 batch=64)

# ------------------------------------------------------------------------------- helpers
# epoch_rows FILE: number of rows of /metrics/epoch; epoch_values FILE: its values, one a line.
epoch_rows() { h5ls "$1/metrics/epoch" 2>/dev/null | sed -n 's/.*Dataset {\([0-9]*\)\/.*/\1/p'; }
epoch_values() {
    h5dump -d /metrics/epoch -y -w 0 "$1" 2>/dev/null |
        awk '/DATA \{/ { on = 1; next } on && /\}/ { exit } on { gsub(/[ ,]+/, "\n"); print }' | sed '/^$/d'
}
# check_metrics FILE EPOCHS: complete metrics file with epochs 0..EPOCHS, each once.
check_metrics() {
    local f=$1 epochs=$2
    [[ -s "$f" ]] || { echo "missing $f"; return 1; }
    if ! command -v h5dump >/dev/null 2>&1; then
        # Without hdf5-tools only the HDF5 signature can be checked.
        [[ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" == 894844460d0a1a0a ]] || { echo "$f is not HDF5"; return 1; }
        return 0
    fi
    h5dump -a /format "$f" 2>/dev/null | grep -q '"dualnet-metrics"' || { echo "$f: no format=dualnet-metrics"; return 1; }
    local rows want
    rows=$(epoch_rows "$f")
    [[ "$rows" == "$((epochs + 1))" ]] || { echo "$f: /metrics/epoch has '${rows}' rows, want $((epochs + 1))"; return 1; }
    want=$(seq 0 "$epochs")
    [[ "$(epoch_values "$f")" == "$want" ]] || { echo "$f: /metrics/epoch is not 0..$epochs"; return 1; }
}
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# --------------------------------------------------------------------------------- parts
part_train() {
    local rc=0
    timeout 240 "$repo/jobs/submit.sh" --wait --ntasks=2 --job-name="${job_prefix}-train" \
        "$repo/jobs/train.sbatch" "${tiny[@]}" epochs=2 >train.submit 2>&1 || rc=$?
    local run="$work/runs/${job_prefix}-train"
    [[ $rc -eq 0 ]] || { echo "train.sbatch exited $rc"; cat train.submit; cat slurm-"${job_prefix}"-train-*.out; return 1; }
    [[ -s "$run/timing.json" ]] || { echo "no $run/timing.json"; return 1; }
    [[ "$(json_field "$run/timing.json" ranks)" == 2 ]] || { echo "timing.json: ranks is not 2"; return 1; }
    check_metrics "$run/metrics.h5" 2 || return 1
    [[ -s "$run/config.toml" ]] || { echo "no config.toml"; return 1; }
    local before
    before=$(stat -c %Y.%s "$run/timing.json")
    rc=0
    timeout 120 "$repo/jobs/submit.sh" --wait --job-name="${job_prefix}-train" \
        "$repo/jobs/train.sbatch" "${tiny[@]}" epochs=2 >train.submit2 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || { echo "resubmitting a finished run exited $rc"; return 1; }
    [[ "$(stat -c %Y.%s "$run/timing.json")" == "$before" ]] || { echo "a finished run was run again"; return 1; }
    grep -q "already finished" slurm-"${job_prefix}"-train-*.out || { echo "no 'already finished' in the job log"; return 1; }
    rc=0
    timeout 120 "$repo/jobs/submit.sh" --wait --job-name="${job_prefix}-bad" \
        "$repo/jobs/train.sbatch" "${tiny[@]}" no_such_key=1 >train.submit3 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || { echo "a bad key gave job exit status $rc, want 2"; cat slurm-"${job_prefix}"-bad-*.out; return 1; }
}

part_sweep() {
    cat >"$work/ci-sweep.toml" <<EOF
name = "${job_prefix}-sweep"
seeds = [1, 2]
[set]
depth = 3
samples_per_pass = 512
batch = 64
epochs = 2
[axes]
hid = [4, 6]
[slurm]
time = "00:05:00"
EOF
    local sdir="$work/sweep" rc=0
    timeout 240 python3 "$repo/jobs/sweep.py" submit ci-sweep.toml --dir "$sdir" --throttle 2 --wait \
        >sweep.submit1 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || { echo "first sweep submission exited $rc"; cat sweep.submit1; tail -n 5 "$sdir"/logs/*; return 1; }
    grep -q "submitting 4 of 4 tasks (--array=0-3%2)" sweep.submit1 || { echo "unexpected submission: $(cat sweep.submit1)"; return 1; }
    local t d
    for t in 0 1 2 3; do
        d=$(awk -F '\t' -v t="$t" '$1 == t { print $2 }' "$sdir/manifest.tsv")
        [[ -s "$d/timing.json" ]] || { echo "task $t: no $d/timing.json"; return 1; }
        check_metrics "$d/metrics.h5" 2 || return 1
    done
    local first_job
    first_job=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' sweep.submit1)
    # Delete task 2's run: the next submission must run task 2 and nothing else.
    local redo keep1
    redo=$(awk -F '\t' '$1 == 2 { print $2 }' "$sdir/manifest.tsv")
    keep1=$(awk -F '\t' '$1 == 1 { print $2 }' "$sdir/manifest.tsv")
    local stamp
    stamp=$(stat -c %Y.%s "$keep1/timing.json")
    rm -rf "$redo"
    rc=0
    timeout 240 python3 "$repo/jobs/sweep.py" submit ci-sweep.toml --dir "$sdir" --throttle 2 --wait \
        >sweep.submit2 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || { echo "second sweep submission exited $rc"; cat sweep.submit2; return 1; }
    grep -q "submitting 1 of 4 tasks (--array=2%2)" sweep.submit2 || { echo "second submission was not just task 2: $(cat sweep.submit2)"; return 1; }
    local second_job
    second_job=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' sweep.submit2)
    [[ -n "$second_job" && "$second_job" != "$first_job" ]] || { echo "no second array job"; return 1; }
    local logs
    logs=$(find "$sdir/logs" -name "${second_job}_*" -printf '%f ')
    [[ "$logs" == "${second_job}_2.out " ]] || { echo "second array job ran tasks with logs: '$logs'"; return 1; }
    [[ -s "$redo/timing.json" ]] || { echo "task 2 was not run again"; return 1; }
    [[ "$(stat -c %Y.%s "$keep1/timing.json")" == "$stamp" ]] || { echo "finished task 1 was run again"; return 1; }
    rc=0
    python3 "$repo/jobs/sweep.py" submit ci-sweep.toml --dir "$sdir" >sweep.submit3 2>&1 || rc=$?
    if [[ $rc -ne 0 ]] || ! grep -q "nothing to submit" sweep.submit3; then
        echo "third submission: $(cat sweep.submit3)"
        return 1
    fi
}

part_scaling() {
    local csv="$work/scaling.csv" rc=0
    timeout 240 "$repo/jobs/scaling.sh" --name "${job_prefix}-scaling" --ranks 1,2 --batch 256 \
        --per-rank-batch 128 --steps 40 --results "$csv" --wait epochs=1 depth=3 hid=4 \
        >scaling.submit 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || { echo "scaling study exited $rc"; cat scaling.submit; cat "$work"/runs/scaling/slurm-*.out; return 1; }
    local header="kind,ranks,nodes,global_batch,per_rank_batch,samples_per_s,step_time_s,compute_s,allreduce_s,io_s,efficiency"
    [[ "$(head -n 1 "$csv")" == "$header" ]] || { echo "bad CSV header: $(head -n 1 "$csv")"; return 1; }
    local got
    got=$(tail -n +2 "$csv" | cut -d, -f1-5 | tr '\n' ' ')
    [[ "$got" == "strong,1,1,256,256 strong,2,1,256,128 weak,1,1,128,128 weak,2,1,256,128 " ]] ||
        { echo "unexpected rows: $got"; cat "$csv"; return 1; }
    # Numbers: positive throughput and step times; baselines have efficiency 1.
    python3 - "$csv" <<'PY' || return 1
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    for k in ("samples_per_s", "step_time_s", "compute_s"):
        assert float(r[k]) > 0, (k, r)
    for k in ("allreduce_s", "io_s"):
        assert float(r[k]) >= 0, (k, r)
    assert float(r["compute_s"]) <= float(r["step_time_s"]) * 1.01, r
for i in (0, 2):
    assert abs(float(rows[i]["efficiency"]) - 1) < 1e-9, rows[i]
assert all(float(r["efficiency"]) > 0 for r in rows)
PY
}

# calibrate_requeue: set requeue_epochs so that the requeue run trains for about 60 s on an
# idle machine. The warning arrives 20..50 s before the 60 s limit, i.e. 10..40 s into a run,
# so the first run is always interrupted (a busy machine only makes the run longer).
# An epoch's time is the difference of a 22-epoch and a 2-epoch run, so start-up (a large
# share of a short run) does not count, and over 20 epochs, because a few epochs' difference
# undershot the steady rate by 1.7x (15 against 26 ms); best of two, so that a busy moment
# does not shrink the run.
calibrate_requeue() {
    local t0 t1 t2 ms best=0 i
    for i in 1 2; do
        t0=$(date +%s%N)
        "$bin" train depth=3 hid=4 batch=64 samples_per_pass=32000 epochs=2 out="$work/calibrate$i" >/dev/null 2>&1 ||
            { log "FAIL: calibration run of dualnet failed"; exit 1; }
        t1=$(date +%s%N)
        "$bin" train depth=3 hid=4 batch=64 samples_per_pass=32000 epochs=22 out="$work/calibrate$i" overwrite=true \
            >/dev/null 2>&1 || { log "FAIL: calibration run of dualnet failed"; exit 1; }
        t2=$(date +%s%N)
        ms=$(((t2 - t1 - (t1 - t0)) / 20000000)) # ms per epoch
        ((ms > 0)) || ms=1
        ((best == 0 || ms < best)) && best=$ms
    done
    requeue_epochs=$((60000 / best))
    ((requeue_epochs >= 20)) || requeue_epochs=20
    ((requeue_epochs <= 20000)) || requeue_epochs=20000
    log "requeue run: $requeue_epochs epochs (calibrated ${best} ms/epoch)"
}

# lengthen_after_requeue SUBMIT_LOG [TASK_SUFFIX]: once the job submitted in SUBMIT_LOG (its
# array task TASK_SUFFIX, e.g. _0) has been requeued, raise its time limit to 10 minutes, so
# that the resumed run finishes. The test needs one warning, checkpoint, requeue and resume;
# how many 1-minute cycles a whole run would need depends on the machine's speed and on
# Slurm's 30 s timer (a cycle trains for 10..40 s of it), not on dualnet, and with 13 cycles
# the parts ran past their time. Runs in the background of a part; gives up after 400 s.
lengthen_after_requeue() {
    local submit_log=$1 suffix=${2:-} id="" restarts i
    for ((i = 0; i < 400; i++)); do
        [[ -n "$id" ]] || id=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$submit_log" 2>/dev/null)
        if [[ -n "$id" ]]; then
            restarts=$(scontrol show job "$id$suffix" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
            if [[ "$restarts" =~ ^[0-9]+$ ]] && ((restarts >= 1)); then
                scontrol update JobId="$id$suffix" TimeLimit=10 && return 0
            fi
        fi
        sleep 1
    done
    return 1
}

part_requeue() {
    local epochs=$requeue_epochs
    local name="${job_prefix}-requeue" rc=0
    lengthen_after_requeue requeue.submit &
    local lengthen=$!
    timeout 420 "$repo/jobs/submit.sh" --wait --time=1 --signal=B:USR1@20 --job-name="$name" \
        "$repo/jobs/train.sbatch" depth=3 hid=4 batch=64 samples_per_pass=32000 "epochs=$epochs" \
        >requeue.submit 2>&1 || rc=$?
    kill "$lengthen" 2>/dev/null || true
    local run="$work/runs/$name" out
    out=$(cat slurm-"$name"-*.out 2>/dev/null || true)
    [[ $rc -eq 0 ]] || { echo "requeue job exited $rc"; printf '%s\n' "$out" | grep -v '^epoch' | tail -n 30; return 1; }
    grep -q "time-limit warning (USR1)" <<<"$out" || { echo "no time-limit warning reached the job (machine faster than calibrated?)"; return 1; }
    grep -q "stopped by SIGUSR1" <<<"$out" || { echo "dualnet did not report stopping on SIGUSR1"; return 1; }
    grep -q "requeueing job" <<<"$out" || { echo "the job did not requeue itself"; return 1; }
    grep -q "resuming run" <<<"$out" || { echo "the requeued job did not resume"; return 1; }
    grep -q "restart=1" "$run/jobs.log" || { echo "jobs.log has no restart=1 entry"; return 1; }
    [[ -s "$run/timing.json" ]] || { echo "resumed run did not finish (no timing.json)"; return 1; }
    check_metrics "$run/metrics.h5" "$epochs" || return 1
    echo "restarts: $(grep -c 'requeueing job' <<<"$out")"
}

part_requeue_array() {
    # The same path for a sweep task: an array task must requeue itself alone.
    local epochs=$requeue_epochs sdir="$work/rq-sweep" rc=0
    cat >"$work/rq-sweep.toml" <<EOF
name = "${job_prefix}-rqsweep"
seeds = [7]
[set]
depth = 3
hid = 4
batch = 64
samples_per_pass = 32000
epochs = $epochs
[axes]
loss = ["ref_nce"]
[slurm]
time = "00:01:00"
EOF
    lengthen_after_requeue rq-sweep.submit _0 &
    local lengthen=$!
    timeout 420 python3 "$repo/jobs/sweep.py" submit rq-sweep.toml --dir "$sdir" --wait -- --signal=B:USR1@20 \
        >rq-sweep.submit 2>&1 || rc=$?
    kill "$lengthen" 2>/dev/null || true
    local log run
    log=$(cat "$sdir"/logs/*_0.out 2>/dev/null || true)
    run=$(awk -F '\t' '$1 == 0 { print $2 }' "$sdir/manifest.tsv")
    [[ $rc -eq 0 ]] || { echo "requeue sweep exited $rc"; printf '%s\n' "$log" | grep -v '^epoch' | tail -n 30; return 1; }
    local array_id
    array_id=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' rq-sweep.submit)
    grep -q "requeueing job ${array_id}_0 " <<<"$log" || { echo "the array task did not requeue itself as ${array_id}_0"; return 1; }
    grep -q "resuming run" <<<"$log" || { echo "the requeued array task did not resume"; return 1; }
    [[ -s "$run/timing.json" ]] || { echo "the array task's run did not finish"; return 1; }
    check_metrics "$run/metrics.h5" "$epochs" || return 1
    echo "restarts: $(grep -c 'requeueing job' <<<"$log")"
}

# ------------------------------------------------------------------------------ run them
log "work directory $work"
calibrate_requeue
declare -A pids=()
for part in requeue requeue_array train sweep scaling; do
    "part_$part" >"$work/$part.result" 2>&1 &
    pids[$part]=$!
done
for part in train sweep scaling requeue requeue_array; do
    if wait "${pids[$part]}"; then
        pass "$part $(tail -n 1 "$work/$part.result")"
    else
        fail "$part"
        sed 's/^/    /' "$work/$part.result"
    fi
done

if ((${#failures[@]})); then
    log "${#failures[@]} part(s) failed: ${failures[*]}"
    exit 1
fi
log "all Slurm tests passed"
