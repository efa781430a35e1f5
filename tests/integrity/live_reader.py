"""Reads a live dualnet run the way researchers do, for the readers test.

Holds metrics.h5 open in h5py (default file locking) and in xarray (h5netcdf) from the
first row until the run ends, and meanwhile re-opens the file again and again with h5py,
xarray and dualnet_analysis.load_run. Every read must see whole rows only: each dataset
has exactly as many rows as /metrics/epoch, and every row it sees is, bit for bit, the
row the finished file holds. Prints how many reads and rows it saw; exits 1 on a problem.

    python live_reader.py RUN_DIR PID_FILE READY_FILE

It creates READY_FILE once its modules are loaded (importing them takes seconds under load,
a good part of a short run), then waits for PID_FILE, where the caller writes the run's pid
after starting it: so the reader is there from the run's first row, however fast the run.
"""

import os
import sys
import time

import h5py
import numpy as np
import xarray as xr

import dualnet_analysis

run, pid_file, ready_file = sys.argv[1], sys.argv[2], sys.argv[3]
path = os.path.join(run, "metrics.h5")
open(ready_file, "w").close()
deadline = time.monotonic() + 300
while not os.path.exists(pid_file):
    if time.monotonic() > deadline:
        sys.exit("FAIL: no pid file from the caller")
    time.sleep(0.02)
with open(pid_file) as f:
    pid = int(f.read())


def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def rows_of(f):
    """{dataset: array} of /metrics, checking that every row-indexed dataset is complete."""
    g = f["metrics"]
    n = g["epoch"].shape[0]
    out = {}
    for name, ds in g.items():
        if ds.ndim >= 1 and name not in ("latent", "hid", "level", "neuron"):
            if ds.shape[0] != n:
                sys.exit(f"FAIL: /metrics/{name} has {ds.shape[0]} rows, /metrics/epoch {n}")
            out[name] = ds[...]
    return out


while not os.path.exists(path):
    if not alive():
        sys.exit("FAIL: the run ended before it wrote metrics.h5")
    time.sleep(0.05)

held = h5py.File(path, "r")  # default locking, held for the whole run
held_xr = xr.open_dataset(path, group="metrics", engine="h5netcdf")
seen, reads, max_rows = [], 0, 0
while alive():
    with h5py.File(path, "r") as f:
        seen.append(rows_of(f))
    with xr.open_dataset(path, group="metrics", engine="h5netcdf") as ds:
        assert ds["best_corr"].shape[0] == ds["epoch"].shape[0]
    r = dualnet_analysis.load_run(path)
    max_rows = max(max_rows, r.n_rows)
    reads += 1
    time.sleep(0.02)
# The handles held since the first row still read their (old, consistent) view.
rows_of(held)
_ = held_xr["best_corr"].values
held.close()
held_xr.close()

with h5py.File(path, "r") as f:
    final = rows_of(f)
for snap in seen:
    for name, values in snap.items():
        if name == "samples_per_s":
            continue
        if not np.array_equal(values, final[name][: len(values)], equal_nan=True):
            sys.exit(f"FAIL: a live read of /metrics/{name} saw rows the finished file does not hold")
distinct = sorted({len(s["epoch"]) for s in seen})
if len(distinct) < 3:
    sys.exit(f"FAIL: the reader saw only row counts {distinct}; the run was too short to test live reading")
print(f"ok: {reads} live reads (h5py, xarray, load_run) while 2 handles stayed open; row counts seen {distinct}")
