#!/usr/bin/env bash
# Class "readers": reading a live run never stops, stalls or changes it. A 2-rank run is
# read throughout by h5py (default file locking) and xarray holding metrics.h5 open, and by
# repeated h5py/xarray/dualnet-analyze reads (tests/integrity/live_reader.py); the run must
# finish (exit 0) with metrics bit-identical to an unread run, and every read must have
# seen whole rows only. The run's epoch lines never run ahead of its file.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
make_work
# Long enough for several reads under load (each read of h5py, xarray and load_run takes up
# to a second there); the reader is ready before the run starts.
cfg=(depth=4 hid=6 samples_per_pass=8192 batch=64 epochs=150)

dualnet_np 2 train "${cfg[@]}" out=quiet >/dev/null
# The reader first, ready before the run starts (live_reader.py: it reads from the first row).
"$py" "$here/live_reader.py" read run.pid reader.ready &
reader=$!
for _ in $(seq 3000); do
  [[ -e reader.ready ]] || ! kill -0 "$reader" 2>/dev/null && break
  sleep 0.1
done
[[ -e reader.ready ]] || fail "the live reader did not start"
dualnet_np 2 train "${cfg[@]}" out=read >"$logs/run" 2>&1 &
pid=$!
echo "$pid" >run.pid.tmp && mv run.pid.tmp run.pid
rc=0
wait "$reader" || rc=$?
run_rc=0
wait "$pid" || run_rc=$?
[[ $run_rc == 0 ]] || fail "the run read live exited $run_rc: $(tail -3 "$logs/run")"
[[ $rc == 0 ]] || fail "the live reader failed"
same_metrics quiet read
# An epoch's line is printed once its row is on disk (rank 0 writes behind the computation:
# io/write_behind.hpp), so whoever sees "epoch N/" finds rows 0 .. N in metrics.h5.
dualnet_np 2 train "${cfg[@]}" epochs=40 out=lines 2>"$logs/lines.err" | "$py" -c '
import re, sys, h5py
seen = 0
for line in sys.stdin:
    m = re.match(r"epoch +([0-9]+)/", line)
    if not m:
        continue
    n = int(m.group(1))
    with h5py.File("lines/metrics.h5", "r") as f:
        rows = f["metrics/epoch"].shape[0]
    if rows < n + 1:
        sys.exit(f"FAIL: the line of epoch {n} was printed with {rows} rows in metrics.h5")
    seen += 1
if seen != 41:
    sys.exit(f"FAIL: {seen} epoch lines read, 41 expected")
' || fail "epoch lines ahead of metrics.h5 (run: $(tail -2 "$logs/lines.err"))"
# dualnet-analyze on the finished run while a reader still holds it open.
"$py" - <<'PY'
import h5py, subprocess, sys, os
held = h5py.File("read/metrics.h5", "r")
out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "dualnet-analyze"), "summary", "read"],
                     capture_output=True, text=True)
held.close()
if out.returncode != 0:
    sys.exit("FAIL: dualnet-analyze summary with the file held open: " + out.stderr)
PY
echo "PASS: readers"
