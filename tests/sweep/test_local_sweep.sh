#!/usr/bin/env bash
# `python3 jobs/sweep.py run`: a sweep on this machine, without Slurm, with the real binary.
#
#   tests/sweep/test_local_sweep.sh
#
# A tiny sweep (hid = [2, 4] x seeds [1, 2]) and:
#   1 run --jobs 2 finishes all 4 runs (exit 0), each bit-identical to the same run by hand
#   2 running it again skips every run and changes no byte
#   3 a run without timing.json resumes and a stale run (no checkpoint) restarts; only those
#   4 SIGINT to sweep.py stops the runs at a checkpoint (exit 130, no process left); the
#     same command then completes them, bit-identical to uninterrupted runs
#   5 a run dualnet refuses (hid=0) fails the sweep (exit 1) and is named with its log
#   6 --ranks 2 runs under mpiexec and matches the 1-rank run
#   7 a run whose directory another dualnet holds is skipped as running elsewhere (exit 0)
# Environment: DUALNET_BIN, DUALNET_MPIEXEC (tests/cli/lib.sh); DUALNET_TEST_KEEP=1 keeps
# the work directory.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

work=$(mktemp -d /tmp/dualnet-local-sweep.XXXXXX)
bg=""    # pid of a sweep.py or dualnet this script runs in the background
hand=""  # pid of the dualnet of case 7
cleanup() {
  local rc=$?
  set +e
  for p in $bg $hand; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  if ((rc == 0)) && [[ ${DUALNET_TEST_KEEP:-0} != 1 ]]; then
    rm -rf "$work"
  else
    echo "work directory kept: $work" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
cd "$work"
t0=$SECONDS
say() { printf '[local_sweep %3ds] %s\n' "$((SECONDS - t0))" "$*"; }
sweep() { python3 "$repo/jobs/sweep.py" "$@"; }

tiny=(depth=3 samples_per_pass=512 batch=64 epochs=3)
long=(depth=3 samples_per_pass=16384 batch=64 epochs=80)

# sweep_file NAME HIDS SEEDS SETTINGS...: write NAME.toml.
sweep_file() {
  local name=$1 hids=$2 seeds=$3 kv
  shift 3
  {
    printf 'name = "%s"\nseeds = [%s]\n[set]\n' "$name" "$seeds"
    for kv in "$@"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"; done
    printf '[axes]\nhid = [%s]\n' "$hids"
  } >"$name.toml"
}
# Every file under DIR with its size, mtime and content hash.
snapshot() {
  (cd "$1" && find . -printf '%y %p %s %T@\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
# hand_run DIR HID SEED SETTINGS...: the same run as a sweep's, started by hand.
hand_run() {
  local dir=$1 hid=$2 seed=$3
  shift 3
  [[ -e $dir/timing.json ]] || "$bin" train "$@" "hid=$hid" "seed=$seed" out="$dir" >"$dir.log" 2>&1 || fail "hand run $dir failed"
}
# expect_rc WANT OUTFILE SWEEP-ARGS...: run sweep.py, output to OUTFILE, require exit status WANT.
expect_rc() {
  local want=$1 out=$2 rc=0
  shift 2
  timeout 300 python3 "$repo/jobs/sweep.py" "$@" >"$out" 2>&1 || rc=$?
  [[ $rc == "$want" ]] || { cat "$out" >&2; fail "sweep.py $*: exit status $rc, want $want"; }
}
# wait_for N GLOB...: wait (at most 60 s) until at least N of the paths exist.
wait_for() {
  local n=$1 i f have
  shift
  for ((i = 0; i < 600; i++)); do
    have=0
    for f in "$@"; do [[ -e $f ]] && have=$((have + 1)); done
    ((have >= n)) && return 0
    sleep 0.1
  done
  fail "timed out waiting for $n of: $*"
}

# ------------------------------------------------------------------ 1: a whole sweep
sweep_file tiny "2, 4" "1, 2" "${tiny[@]}"
sd=$work/tiny
expect_rc 0 run1.out run tiny.toml --dir "$sd" --jobs 2 --bin "$bin"
grep -q "4 new; up to 2 at once" run1.out || fail "unexpected plan: $(head -1 run1.out)"
mkdir -p hand
for h in 2 4; do
  for s in 1 2; do
    d=$sd/runs/hid-${h}__seed-${s}
    [[ -s $d/timing.json ]] || fail "$d has no timing.json"
    [[ -s $sd/logs/local/hid-${h}__seed-${s}.log ]] || fail "no log for hid-${h}__seed-${s}"
    hand_run "hand/hid-${h}__seed-${s}" "$h" "$s" "${tiny[@]}"
    same_metrics "$d" "hand/hid-${h}__seed-${s}"
  done
done
sweep status tiny.toml --dir "$sd" | grep -q "4 finished" || fail "status does not agree: $(sweep status tiny.toml --dir "$sd")"
grep -q "runs=0-3" "$sd/submissions.log" || fail "no local entry in submissions.log"
say "ok 1: 4 runs, bit-identical to hand runs"

# ------------------------------------------------------------------ 2: nothing left to do
before=$(snapshot "$sd/runs"; snapshot "$sd/logs")
expect_rc 0 run2.out run tiny.toml --dir "$sd" --jobs 2 --bin "$bin"
grep -q "all 4 runs finished; nothing to run" run2.out || fail "a finished sweep was not skipped: $(cat run2.out)"
[[ "$(snapshot "$sd/runs"; snapshot "$sd/logs")" == "$before" ]] || fail "a finished sweep was rewritten"
say "ok 2: finished runs skipped, nothing rewritten"

# ------------------------------------------------------------------ 3: resume and restart
resume=$sd/runs/hid-2__seed-1 stale=$sd/runs/hid-4__seed-2
rm "$resume/timing.json"
rm -rf "$stale/timing.json" "$stale/checkpoints"
before=$(snapshot "$sd/runs/hid-2__seed-2"; snapshot "$sd/runs/hid-4__seed-1")
expect_rc 0 dry.out run tiny.toml --dir "$sd" --bin "$bin" --dry-run
[[ $(grep -c ': .*dualnet train' dry.out) == 2 ]] || fail "--dry-run should list 2 runs: $(cat dry.out)"
grep -q "resume=$resume\$" dry.out || fail "--dry-run does not resume $resume"
grep -q "out=$stale overwrite=true\$" dry.out || fail "--dry-run does not restart $stale"
[[ ! -e $resume/timing.json ]] || fail "--dry-run ran something"
expect_rc 0 run3.out run tiny.toml --dir "$sd" --jobs 2 --bin "$bin"
grep -q "2 finished (skipped), 1 to resume, 1 to restart" run3.out || fail "unexpected plan: $(head -1 run3.out)"
[[ $(grep -c ': started' run3.out) == 2 ]] || fail "not exactly 2 runs started: $(cat run3.out)"
grep -q "resumable: .*resume=$resume" "$sd/logs/local/hid-2__seed-1.log" || fail "hid-2__seed-1 was not resumed"
grep -q "stale: .*out=$stale overwrite=true" "$sd/logs/local/hid-4__seed-2.log" || fail "hid-4__seed-2 was not restarted"
[[ "$(snapshot "$sd/runs/hid-2__seed-2"; snapshot "$sd/runs/hid-4__seed-1")" == "$before" ]] || fail "a finished run was touched"
same_metrics "$resume" hand/hid-2__seed-1
same_metrics "$stale" hand/hid-4__seed-2
say "ok 3: only the resumable and the stale run ran again"

# ------------------------------------------------------------------ 4: Ctrl-C and continue
sweep_file long "2, 4" "1, 2" "${long[@]}"
ld=$work/long
python3 "$repo/jobs/sweep.py" run long.toml --dir "$ld" --jobs 2 --bin "$bin" >int1.out 2>&1 &
bg=$!
# The first two runs start at once; signal when both have checkpointed (a run signalled in
# its first milliseconds, before dualnet handles signals, would just start afresh later).
wait_for 2 "$ld/runs/hid-2__seed-1/checkpoints/latest" "$ld/runs/hid-2__seed-2/checkpoints/latest"
kill -INT "$bg"
rc=0
wait "$bg" || rc=$?
bg=""
[[ $rc == 130 ]] || { cat int1.out >&2; fail "sweep.py after SIGINT: exit status $rc, want 130"; }
! pgrep -f -- "$ld/" >/dev/null || fail "processes left after SIGINT: $(pgrep -af -- "$ld/")"
started=("$ld"/runs/*)
[[ ${#started[@]} == 2 ]] || fail "expected 2 started runs, have ${#started[@]}"
for d in "${started[@]}"; do
  [[ -e $d/checkpoints/latest && ! -e $d/timing.json ]] || fail "$d: want a checkpoint and no timing.json"
  grep -q "stopped by SIGINT" "$ld/logs/local/${d##*/}.log" || fail "${d##*/} did not stop on SIGINT"
done
again=$(sed -n '/Continue with:/{n;s/^ *//;p}' int1.out)
[[ $again == *"sweep.py run long.toml --dir $ld --jobs 2 --bin $bin" ]] || fail "no continue command: $(cat int1.out)"
expect_rc 0 int2.out run long.toml --dir "$ld" --jobs 2 --bin "$bin"
grep -q "2 to resume, 0 to restart (no checkpoint), 2 new" int2.out || fail "unexpected plan: $(head -1 int2.out)"
pids=()
for d in "${started[@]}"; do
  n=${d##*/}
  h=${n#hid-}
  hand_run "hand/long-$n" "${h%%__*}" "${n##*seed-}" "${long[@]}" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "an uninterrupted reference run failed"; done
for d in "${started[@]}"; do
  same_metrics "$d" "hand/long-${d##*/}"
  same_weights "$d" "hand/long-${d##*/}"
done
[[ $(sweep status long.toml --dir "$ld") == *"4 finished"* ]] || fail "the continued sweep is not finished"
say "ok 4: SIGINT -> exit 130, checkpoints, no process left; continued to identical results"

# ------------------------------------------------------------------ 5: a failing run
sweep_file bad "0, 2" "1" "${tiny[@]}"
expect_rc 1 bad.out run bad.toml --dir "$work/bad" --jobs 2 --bin "$bin"
grep -A1 "^failed runs:" bad.out | grep -q "hid-0__seed-1: exit status 2: dualnet: error: .*hid" ||
  fail "the failed run is not named with its status and error: $(cat bad.out)"
grep -q "log: $work/bad/logs/local/hid-0__seed-1.log" bad.out || fail "no log path for the failed run"
[[ -s $work/bad/runs/hid-2__seed-1/timing.json ]] || fail "the good run of the failing sweep did not finish"
say "ok 5: a refused run -> exit 1, named with its error and log"

# ------------------------------------------------------------------ 6: two ranks per run
sweep_file two "4" "1" "${tiny[@]}"
expect_rc 0 two.out run two.toml --dir "$work/two" --ranks 2 --mpiexec "${mpiexec[*]}" --bin "$bin"
grep -q "up to [0-9]* at once, 2 ranks each" two.out || fail "unexpected plan: $(head -1 two.out)"
d=$work/two/runs/hid-4__seed-1
[[ $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ranks"])' "$d/timing.json") == 2 ]] ||
  fail "$d did not run on 2 ranks"
same_metrics "$d" hand/hid-4__seed-1
say "ok 6: --ranks 2 matches the 1-rank run"

# ------------------------------------------------------------------ 7: in use elsewhere
sweep_file busy "2, 4" "1" "${tiny[@]}"
held=$work/busy/runs/hid-2__seed-1
mkdir -p "$work/busy/runs"
# A real second writer: a longer run in the same directory, holding its lock.
"$bin" train depth=3 samples_per_pass=16384 batch=64 epochs=100000 hid=2 seed=1 out="$held" >hand-busy.log 2>&1 &
hand=$!
wait_for 1 "$held/checkpoints/latest"
expect_rc 0 busy.out run busy.toml --dir "$work/busy" --jobs 2 --bin "$bin"
grep -q "hid-2__seed-1: skipped: running elsewhere" busy.out || fail "the held run was not skipped: $(cat busy.out)"
grep -A1 "^running elsewhere" busy.out | grep -q "hid-2__seed-1" || fail "the held run is not listed: $(cat busy.out)"
[[ -s $work/busy/runs/hid-4__seed-1/timing.json ]] || fail "the free run did not finish"
if [[ -n $hand ]]; then
  kill -TERM "$hand"
  wait "$hand" || fail "the second writer did not stop cleanly"
  hand=""
  [[ -e $held/checkpoints/latest ]] || fail "the second writer lost its checkpoint"
fi
say "ok 7: a run in use by another dualnet is skipped, exit 0"

echo "PASS: local sweeps ($((SECONDS - t0)) s)"
