"""Runs written by the real dualnet binary, made once per test session.

The binary is $DUALNET_BIN or <repo>/build/dualnet. Without it every test fails with
that message: these tests exist to check the analysis against what dualnet writes.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = {"depth": 3, "hid": 4, "samples_per_pass": 512, "batch": 64, "epochs": 2}
SWEEP_HID = (2, 4)
SWEEP_SEEDS = (1, 2)
PARTIAL_EPOCHS = 1000  # far more than the partial run lives: it is killed after two evaluations


def dualnet_bin():
    path = Path(os.environ.get("DUALNET_BIN", REPO / "build" / "dualnet"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"no dualnet binary at {path}: build it (cmake --build build) or set DUALNET_BIN", pytrace=False)
    return path


def train_command(out, **keys):
    settings = TINY | keys | {"out": out}
    return [str(dualnet_bin()), "train", *(f"{k}={v}" for k, v in settings.items())]


def finished_rows(path):
    """Rows every /metrics dataset holds in a file another process is writing (0 while unreadable)."""
    try:
        with h5py.File(path, "r", locking=False) as file:
            return min(d.shape[0] for d in file["metrics"].values() if d.maxshape[0] is None)
    except (OSError, KeyError, ValueError):
        return 0


def kill_after_two_rows(proc, path):
    """SIGKILL a training once two evaluations are in its file: a run killed part-way."""
    deadline = time.monotonic() + 60
    while finished_rows(path) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    output = proc.communicate()[0]
    if proc.returncode != -signal.SIGKILL or finished_rows(path) < 2:
        pytest.fail(f"partial run was to be killed after two evaluations; it ended with {proc.returncode} "
                    f"after {finished_rows(path)}:\n{output}", pytrace=False)


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Paths of: a 2-config x 2-seed sweep, a run without corr_full, and a partial run.

    All trainings start at once, so the session pays for the slowest, not the sum.
    """
    root = tmp_path_factory.mktemp("runs")
    jobs = {f"sweep/hid{h}/seed{s}": {"hid": h, "seed": s} for h in SWEEP_HID for s in SWEEP_SEEDS}
    jobs["no_corr_full"] = {"corr_full": "false", "seed": 3}
    # Longer passes, so the kill lands while it trains, not while it writes a row.
    jobs["partial"] = {"epochs": PARTIAL_EPOCHS, "samples_per_pass": 32768, "seed": 4}
    procs = {name: subprocess.Popen(train_command(root / name, **keys), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for name, keys in jobs.items()}
    kill_after_two_rows(procs.pop("partial"), root / "partial" / "metrics.h5")
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"dualnet train for {name} failed ({proc.returncode}):\n{output}", pytrace=False)
    return {"root": root, "sweep": root / "sweep", "single": root / "sweep/hid4/seed1",
            "no_corr_full": root / "no_corr_full", "partial": root / "partial"}


def train_each(root, jobs):
    """Run every training of {name: keys} below root at once; {name: its stderr}; fail naming
    the one that failed."""
    procs = {name: subprocess.Popen(train_command(root / name, **keys), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for name, keys in jobs.items()}
    errors = {}
    for name, proc in procs.items():
        output, errors[name] = proc.communicate(timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"dualnet train for {name} failed ({proc.returncode}):\n{output}{errors[name]}",
                        pytrace=False)
    return errors


def train_all(root, jobs):
    train_each(root, jobs)
    return root


# The table bug this guards against: six runs, all seed 1, of 0, 2, 2, 8, 20 and 2 epochs
# were once averaged into one row "6 seeds".
SIX_EPOCHS = (0, 2, 2, 8, 20, 2)
GRID_LOSSES = ("ref_nce", "simp")
GRID_DELTA_LOWER = (0.6, 0.8)


@pytest.fixture(scope="session")
def six_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("six")
    return train_all(root, {f"r{i}": {"hid": 2, "seed": 1, "epochs": e} for i, e in enumerate(SIX_EPOCHS)})


@pytest.fixture(scope="session")
def grid(runs, tmp_path_factory):
    """With the `runs` sweep (ref_nce, delta_lower 0.8): a full loss x delta_lower x hid x seed grid.

    Only the 12 runs the sweep lacks are made here, so a comparison reads two directories.
    """
    root = tmp_path_factory.mktemp("grid")
    jobs = {f"{loss}/dl{dl}/hid{h}/seed{s}": {"loss": loss, "delta_lower": dl, "hid": h, "seed": s}
            for loss in GRID_LOSSES for dl in GRID_DELTA_LOWER for h in SWEEP_HID for s in SWEEP_SEEDS
            if (loss, dl) != ("ref_nce", 0.8)}
    return train_all(root, jobs)


# hid=2 networks often collapse. With these settings (dualnet's defaults otherwise: depth 5,
# batch 128), seed 2 collapses by epoch 1 (output_rank1_gap ~2e-9) and seed 1 trains (~0.08).
COLLAPSE_KEYS = {"depth": 5, "hid": 2, "batch": 128, "samples_per_pass": 12800, "epochs": 2}
COLLAPSING_SEED, TRAINING_SEED = 2, 1


@pytest.fixture(scope="session")
def collapse_runs(tmp_path_factory):
    """One configuration, two seeds: one collapses, one trains (about 1 s each)."""
    root = tmp_path_factory.mktemp("collapse")
    seeds = (TRAINING_SEED, COLLAPSING_SEED)
    stderr = train_each(root, {f"seed{s}": COLLAPSE_KEYS | {"seed": s} for s in seeds})
    return {"root": root, "collapsed": root / f"seed{COLLAPSING_SEED}", "trained": root / f"seed{TRAINING_SEED}",
            "stderr": {s: stderr[f"seed{s}"] for s in seeds}}


@pytest.fixture
def analyze(capsys):
    """Run the command in-process: returns (exit code, stdout, stderr)."""
    from dualnet_analysis.cli import main

    def call(*args):
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture
def analyze_exe():
    """Run the installed console script, as a user would."""
    exe = Path(sys.executable).parent / "dualnet-analyze"

    def call(*args):
        proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr

    return call
