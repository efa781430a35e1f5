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
