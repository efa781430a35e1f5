"""Runs written by the real dualnet binary, made once per test session.

The binary is $DUALNET_BIN or <repo>/build/dualnet. Without it every test fails with
that message: these tests exist to check the analysis against what dualnet writes.
"""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = {"depth": 3, "hid": 4, "samples_per_pass": 512, "batch": 64, "epochs": 2}
SWEEP_HID = (2, 4)
SWEEP_SEEDS = (1, 2)
PARTIAL_EPOCHS = 4


def dualnet_bin():
    path = Path(os.environ.get("DUALNET_BIN", REPO / "build" / "dualnet"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"no dualnet binary at {path}: build it (cmake --build build) or set DUALNET_BIN", pytrace=False)
    return path


def train_command(out, **keys):
    settings = TINY | keys | {"out": out}
    return [str(dualnet_bin()), "train", *(f"{k}={v}" for k, v in settings.items())]


def rows(path):
    """Finished rows of a metrics file another process may still be writing."""
    with h5py.File(path, "r", locking=False) as file:
        return len(file["metrics/epoch"])


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Paths of: a 2-config x 2-seed sweep, a run without corr_full, and a partial run.

    All trainings start at once, so the session pays for the slowest, not the sum.
    """
    root = tmp_path_factory.mktemp("runs")
    jobs = {f"sweep/hid{h}/seed{s}": {"hid": h, "seed": s} for h in SWEEP_HID for s in SWEEP_SEEDS}
    jobs["no_corr_full"] = {"corr_full": "false", "seed": 3}
    jobs["partial"] = {"epochs": PARTIAL_EPOCHS, "stop_after_epochs": 1, "seed": 4}
    procs = {name: subprocess.Popen(train_command(root / name, **keys), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, keys in jobs.items()}
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
