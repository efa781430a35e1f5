#!/usr/bin/env python3
"""The memory estimate against the measured peak RSS of real runs.

For a grid of shapes (depth, num_children, hid, batch, micro_batch, negatives, eval_chunk,
corr_full, epochs, resume; 1 and 2 ranks) it runs `dualnet train ...` in a fresh process per
rank (under mpirun at 2 ranks), takes each rank's peak RSS from wait4()'s ru_maxrss, asks
tests/memory/memory_probe for estimate_memory_bytes of the same keys, and fails if any rank's
peak exceeds the estimate.
Prints a table: shape, estimate MB, peak MB (the largest rank), estimate / peak.

Also checks, without running them, the cases of the issue: the estimate of the depth-6, k-16
config whose evaluation batch alone is 8.6 GB, and that samples_per_pass=2^43 is refused by
the memory check with one line (exit 2).

  rss_vs_estimate.py --dualnet BIN --probe BIN --mpiexec MPIRUN [--preflags=FLAGS] --workdir DIR
  rss_vs_estimate.py --measure OUT -- CMD ...   (internal: one rank's wrapper)
"""
import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys

MB = 1e6
RUN_TIMEOUT_S = 120  # one run; each takes a few seconds

# (ranks, key=value ...): every run is one epoch (unless epochs= says) of a small pass, a few
# seconds at most; "resume": the run measured is one more epoch, resumed from a checkpoint.
# The tree of the issue's 8.6 GB case (depth 6, k 16) is far too big to run; its estimate is
# checked below.
SHAPES = [
    (1, "depth=2 num_children=2 hid=1 batch=2 micro_batch=1 samples_per_pass=64"),
    (1, "samples_per_pass=1280"),  # the reference configuration, one pass of 10 steps
    (2, "samples_per_pass=1280"),
    (1, "depth=3 num_children=2 hid=64 batch=16 micro_batch=4 samples_per_pass=256"),
    (2, "depth=7 num_children=2 hid=10 batch=64 micro_batch=8 negatives=4 samples_per_pass=512"),
    (1, "depth=7 num_children=2 hid=16 batch=32 micro_batch=8 samples_per_pass=256 corr_full=true"),
    (1, "depth=4 num_children=4 hid=8 batch=256 micro_batch=16 negatives=8 samples_per_pass=512 eval_chunk=64"),
    (2, "depth=3 num_children=8 hid=4 batch=128 micro_batch=4 samples_per_pass=1024 eval_chunk=1024"),
    (1, "depth=2 num_children=16 hid=32 batch=64 micro_batch=2 negatives=2 samples_per_pass=256 corr_full=false"),
    (2, "depth=5 num_children=3 hid=12 batch=32 micro_batch=16 samples_per_pass=256 corr_full=true"),
    (1, "depth=3 num_children=16 hid=2 batch=8 micro_batch=1 samples_per_pass=64 eval_chunk=8"),
    (1, "depth=4 num_children=3 hid=24 batch=24 micro_batch=6 samples_per_pass=240 resume"),
    (1, "depth=6 num_children=2 hid=40 batch=16 micro_batch=4 samples_per_pass=128 corr_full=true"),
    (2, "depth=4 num_children=5 hid=6 batch=512 micro_batch=32 negatives=16 samples_per_pass=1024 loss=infonce"),
    (2, "depth=6 num_children=4 hid=4 batch=8 micro_batch=2 samples_per_pass=64"),  # corr_full (auto) rows of 60 MB
    # More epochs: rank 0 rewrites metrics.h5 whole for every row (io/sealed_file.hpp).
    (1, "depth=6 num_children=4 hid=4 batch=8 micro_batch=2 samples_per_pass=64 epochs=3"),
    (2, "depth=7 num_children=2 hid=16 batch=32 micro_batch=8 samples_per_pass=64 corr_full=true epochs=12"),
]

ISSUE_8_6_GB = "depth=6 num_children=16 hid=1 batch=2 micro_batch=1 samples_per_pass=2 epochs=1"
ISSUE_STEPS = "samples_per_pass=8796093022208"


def measure(out, cmd):
    """Runs cmd as a child and writes its peak RSS (bytes) to OUT.<rank>; exits with its status."""
    rank = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", os.environ.get("PMI_RANK", "0")))
    child = subprocess.Popen(cmd)
    _, status, usage = os.wait4(child.pid, 0)
    with open(f"{out}.{rank}", "w") as f:
        f.write(str(usage.ru_maxrss * 1024))  # kB on Linux
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)  # killed by signal n: 128 + n, as a shell reports it


def probe(args, ranks, keys):
    r = subprocess.run([args.probe, "--ranks", str(ranks)] + keys.split(), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"memory_probe refused '{keys}': {r.stderr.strip()}")
    total, persistent, transient, runtime = (float(x) for x in r.stdout.split())
    return total, persistent, transient, runtime


def run(args, ranks, argv, name):
    """Runs `dualnet train argv...` on `ranks` ranks; returns each rank's peak RSS in bytes."""
    rss = os.path.join(args.workdir, name + ".rss")
    for f in os.listdir(args.workdir):
        if f.startswith(name + ".rss."):
            os.remove(os.path.join(args.workdir, f))
    wrapped = [sys.executable, os.path.abspath(__file__), "--measure", rss, "--", args.dualnet, "train"] + argv
    cmd = wrapped if ranks == 1 else [args.mpiexec, "-n", str(ranks)] + shlex.split(args.preflags) + wrapped
    # Its own process group, so a run that hangs is killed with every process it started.
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        sys.exit(f"run timed out after {RUN_TIMEOUT_S} s: {' '.join(cmd)}")
    if child.returncode != 0:
        sys.exit(f"run failed ({child.returncode}): {' '.join(cmd)}\n{stdout[-2000:]}\n{stderr[-2000:]}")
    peaks = []
    for rank in range(ranks):
        with open(f"{rss}.{rank}") as f:
            peaks.append(int(f.read()))
    return peaks


def measure_shape(args, ranks, keys, name):
    """The estimate (probe's fields) and the peak RSS per rank of a run of `keys` (one epoch
    unless they say epochs=); with "resume", of one more epoch resumed from its checkpoint."""
    out = os.path.join(args.workdir, name)
    shutil.rmtree(out, ignore_errors=True)
    words = keys.split()
    epochs = next((int(w.split("=")[1]) for w in words if w.startswith("epochs=")), 1)
    words = [w for w in words if not w.startswith("epochs=")]
    if "resume" in words:
        words.remove("resume")
        run(args, ranks, words + [f"epochs={epochs}", f"out={out}"], name)
        train = words + [f"epochs={epochs + 1}", f"resume={out}"]
    else:
        train = words + [f"epochs={epochs}", f"out={out}"]
    peaks = run(args, ranks, train, name)
    estimate = probe(args, ranks, " ".join(train))
    shutil.rmtree(out, ignore_errors=True)
    return estimate, peaks


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[4:])
    p = argparse.ArgumentParser()
    p.add_argument("--dualnet", required=True)
    p.add_argument("--probe", required=True)
    p.add_argument("--mpiexec", required=True)
    p.add_argument("--preflags", default="")
    p.add_argument("--workdir", required=True)
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    failures = []
    print(f"{'ranks':>5}  {'shape':<100} {'estimate MB':>11} {'peak MB':>8} {'ratio':>6}")
    for i, (ranks, keys) in enumerate(SHAPES):
        (total, persistent, transient, runtime), peaks = measure_shape(args, ranks, keys, f"shape{i}")
        peak = max(peaks)
        print(f"{ranks:>5}  {keys:<100} {total / MB:>11.1f} {peak / MB:>8.1f} {total / peak:>6.2f}"
              f"   (persistent {persistent / MB:.1f}, transient {transient / MB:.1f}, runtime {runtime / MB:.1f};"
              f" ranks {' '.join(f'{x / MB:.1f}' for x in peaks)})", flush=True)
        if peak > total:
            failures.append(f"{ranks} ranks, {keys}: peak RSS {peak / MB:.1f} MB > estimate {total / MB:.1f} MB")

    # The issue's cases, estimates only.
    total = probe(args, 1, ISSUE_8_6_GB)[0]
    print(f"estimate of '{ISSUE_8_6_GB}': {total / 1e9:.2f} GB (its evaluation batch alone: 8.6 GB)")
    if total < 8.6e9:
        failures.append(f"'{ISSUE_8_6_GB}': estimate {total / 1e9:.2f} GB < 8.6 GB")
    total = probe(args, 1, ISSUE_STEPS)[0]
    print(f"estimate of '{ISSUE_STEPS}': {total / 1e9:.1f} GB (its step losses alone: 549.8 GB)")
    if total < 8.0 * 8796093022208 / 128:
        failures.append(f"'{ISSUE_STEPS}': estimate {total / 1e9:.1f} GB < its step losses")
    with open("/proc/meminfo") as f:
        avail = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    if total > avail:
        out = os.path.join(args.workdir, "refused")
        r = subprocess.run([args.dualnet, "train", ISSUE_STEPS, f"out={out}", "overwrite=true"],
                           capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        print(f"'{ISSUE_STEPS}': exit {r.returncode}, stderr: {r.stderr.strip()}")
        if r.returncode != 2 or len(lines) != 1 or "memory" not in lines[0]:
            failures.append(f"'{ISSUE_STEPS}' was not refused by the memory check with one line (exit {r.returncode})")
        if os.path.exists(out):
            failures.append(f"'{ISSUE_STEPS}': the refused run created {out}")

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("every measured peak RSS is within its estimate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
