#!/usr/bin/env bash
# Class "concurrency": one writer per run directory. While a run (or resume) is alive, a
# second resume or an overwrite=true of it is refused with one line; of two resumes or two
# new runs started at once exactly one proceeds; a writer killed with SIGKILL never blocks
# the next resume. The result is always the run an undisturbed writer would have made.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_work
# Long enough (about 1.5 s an epoch at 2 ranks) that the refusals below land while the run lives.
cfg=(depth=5 hid=10 samples_per_pass=131072 batch=128 epochs=8 seed=3)
dualnet_np 1 train "${cfg[@]}" out=reference >/dev/null

wait_for_checkpoint() {
  for _ in $(seq 600); do
    [[ -f $1/checkpoints/latest ]] && return 0
    sleep 0.05
  done
  fail "no checkpoint in $1"
}

# A live run refuses a second writer, whatever form it takes.
dualnet_np 2 train "${cfg[@]}" out=live >"$logs/live" 2>&1 &
pid=$!
wait_for_checkpoint live
refuse_one 1 "in use by another dualnet process" train resume=live
refuse_one 2 "in use by another dualnet process" train resume=live
refuse_one 1 "in use by another dualnet process" train "${cfg[@]}" out=live overwrite=true
refuse_one 1 "already exists" train "${cfg[@]}" out=live
# SIGKILL of the writer releases the directory at once: resume completes it exactly.
pkill -KILL -f -- "out=live" || true
wait "$pid" || true
[[ ! -f live/timing.json ]] || fail "the live run ended before it was killed; make it longer"
dualnet_np 2 train resume=live >/dev/null
same_metrics reference live
same_weights reference live

# Two resumes of one stopped run, started together: one runs, the other is refused.
dualnet_np 1 train "${cfg[@]}" epochs=3 out=twice >/dev/null
dualnet_np 1 train resume=twice epochs=8 >"$logs/twice1" 2>"$logs/twice1.err" &
p1=$!
dualnet_np 1 train resume=twice epochs=8 >"$logs/twice2" 2>"$logs/twice2.err" &
p2=$!
r1=0 r2=0
wait "$p1" || r1=$?
wait "$p2" || r2=$?
if [[ $r1 == 0 && $r2 == 0 ]]; then
  # Both may succeed only one after the other (the second found the run finished).
  grep -q "in use" "$logs/twice1.err" "$logs/twice2.err" && fail "a refused resume exited 0"
else
  [[ $((r1 == 0 ? 1 : 0)) != $((r2 == 0 ? 1 : 0)) ]] || fail "both concurrent resumes failed ($r1, $r2)"
  grep -qh "in use by another dualnet process" "$logs/twice1.err" "$logs/twice2.err" || fail "the refusal did not say why: $(cat "$logs"/twice*.err)"
fi
rows=$("$py" -c "import h5py; print(h5py.File('twice/metrics.h5','r')['metrics/epoch'].shape[0])")
[[ $rows == 9 ]] || fail "after two concurrent resumes metrics.h5 has $rows rows, 9 expected"
same_metrics reference twice

# Two new runs into one directory, started together: exactly one makes it.
dualnet_np 1 train "${cfg[@]}" epochs=2 out=race >/dev/null 2>"$logs/race1.err" &
q1=$!
dualnet_np 1 train "${cfg[@]}" epochs=2 out=race >/dev/null 2>"$logs/race2.err" &
q2=$!
r1=0 r2=0
wait "$q1" || r1=$?
wait "$q2" || r2=$?
[[ $((r1 == 0 ? 1 : 0)) != $((r2 == 0 ? 1 : 0)) ]] || fail "two new runs into one directory: exits $r1 and $r2"
echo "PASS: concurrency"
