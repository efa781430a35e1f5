#!/usr/bin/env bash
# Exact restart (the LBANN pattern), at 1 and 2 ranks:
#   a run of 8 epochs, uninterrupted (long enough that a signal sent after its second
#   metrics row lands well before its end);
#   the same run killed with SIGKILL in the middle of epoch 1, resumed to the end;
#   the same run stopped with SIGUSR1 (Slurm's warning) mid-pass: every rank exits 0 after
#   writing a checkpoint, and is resumed — on the other rank count;
#   a finished 7-epoch run extended to 8 with resume= epochs=8.
# All must give bit-identical metrics datasets and final weights.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cfg=(depth=4 hid=8 samples_per_pass=16384 batch=64 seed=11 epochs=8 momentum=0.5 checkpoint_every=1)

# Waits until the run has a checkpoint and is well into a later epoch (>= 2 metrics rows
# means the epoch-1 evaluation is written: the kill lands in epoch 1's pass or later).
wait_for_rows() {
  local dir=$1 rows=$2 log=$3
  for _ in $(seq 600); do
    if [[ -f $dir/checkpoints/latest ]] && [[ $(grep -c '^epoch ' "$log" || true) -ge $rows ]]; then return 0; fi
    sleep 0.1
  done
  fail "run in $dir never reached $rows rows"
}

for np in 1 2; do
  other=$((3 - np))
  echo "== $np rank(s)"
  dualnet_np "$np" train "${cfg[@]}" out="$work/full$np" >"$work/full$np.log"

  dualnet_np "$np" train "${cfg[@]}" out="$work/killed$np" >"$work/killed$np.log" 2>&1 &
  pid=$!
  wait_for_rows "$work/killed$np" 2 "$work/killed$np.log"
  pkill -KILL -f -- "out=$work/killed$np" || true
  wait "$pid" || true
  [[ ! -f $work/killed$np/timing.json ]] || fail "the run finished before it was killed; make it longer"
  echo "killed after: $(grep -c '^epoch ' "$work/killed$np.log") rows, checkpoint $(cat "$work/killed$np/checkpoints/latest")"
  dualnet_np "$np" train resume="$work/killed$np" >"$work/resumed$np.log"
  same_metrics "$work/full$np" "$work/killed$np"
  same_weights "$work/full$np" "$work/killed$np"

  dualnet_np "$np" train "${cfg[@]}" out="$work/stopped$np" >"$work/stopped$np.log" 2>&1 &
  pid=$!
  wait_for_rows "$work/stopped$np" 2 "$work/stopped$np.log"
  pkill -USR1 -f -- "out=$work/stopped$np" || true
  rc=0
  wait "$pid" || rc=$?
  [[ $rc == 0 ]] || fail "a stopped run must exit 0, got $rc: $(tail -3 "$work/stopped$np.log")"
  grep -q "resume=" "$work/stopped$np.log" || fail "the stopped run did not print how to resume"
  [[ ! -f $work/stopped$np/timing.json ]] || fail "the run finished before the signal; make it longer"
  dualnet_np "$other" train resume="$work/stopped$np" >"$work/restarted$np.log"
  same_metrics "$work/full$np" "$work/stopped$np"
  same_weights "$work/full$np" "$work/stopped$np"
done

echo "== extend a finished run"
dualnet_np 1 train "${cfg[@]}" epochs=7 out="$work/short" >/dev/null
dualnet_np 1 train resume="$work/short" epochs=8 >/dev/null
same_metrics "$work/full1" "$work/short"
same_weights "$work/full1" "$work/short"

# timing.json counts the evaluations this process ran: the extension re-evaluates row 7 and
# evaluates row 8, two passes (not epochs + 1). eval_s times exactly those passes.
evals=$(python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))
print(round(t["eval_samples_per_s"] * t["eval_s"] / int(sys.argv[2])))' "$work/short/timing.json" 16384)
[[ $evals == 2 ]] || fail "timing.json of the extension: eval_samples_per_s counts $evals evaluations, not 2"
# Without a training step the per-step times are null (JSON has no NaN).
dualnet_np 1 train "${cfg[@]}" epochs=0 out="$work/untrained" >/dev/null
python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))
assert t["steps"] == 0 and t["step_time_s"] is None and t["phases_per_step_s"]["forward"] is None, t' \
  "$work/untrained/timing.json" || fail "timing.json of a run without steps: per-step times must be null"
echo "PASS: restart is exact at 1 and 2 ranks (SIGKILL, SIGUSR1, extension); timing.json after a resume"
