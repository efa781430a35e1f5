"""Direct reads of a run's HDF5 datasets, the independent side of every comparison."""

from pathlib import Path

import h5py
import numpy as np


def read(run_dir, name):
    with h5py.File(Path(run_dir) / "metrics.h5", "r", locking=False) as file:
        return file[name][()]


def level_means(run_dir, name, row):
    """Mean of a per-node metric over each level's nodes at one epoch row."""
    values, level = read(run_dir, name)[row], read(run_dir, "hltm/level")
    return np.array([values[level == lv].mean() for lv in range(level.max() + 1)])


def png_pixels(path):
    """The image's pixels, after checking the file is a PNG."""
    from matplotlib.image import imread

    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return imread(path)
