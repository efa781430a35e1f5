"""Load one dualnet run (metrics.h5) into numpy arrays, checking the file's contract.

Every command reads runs through `load_run`, so the checks that refuse foreign files
and the rule for killed runs (keep only the finished evaluation rows) live here once.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .errors import InputError

FORMAT = "dualnet-metrics"
FORMAT_VERSION = 1

# Trailing dimensions of each /metrics dataset after the leading "epoch" axis.
METRICS_DIMS = {
    "corr": ("latent", "hid"),
    "best_corr": ("latent",),
    "level_mean_best_corr": ("level",),
    "covop_norm_ref": ("latent",),
    "covop_norm_paper": ("latent",),
    "weight_norm": ("latent",),
    "train_loss_mean": (),
    "train_loss_sem": (),
    "samples_per_s": (),
}
# corr_full: present unless the run was configured with corr_full=false. covop_*: the
# operator's spectrum and the weights' alignment (docs/covop.md), absent in older files.
OPTIONAL_METRICS_DIMS = {
    "corr_full": ("latent", "neuron"),
    "covop_eigenvalues": ("latent", "hid"),
    "covop_alignment": ("latent",),
}
HLTM_NAMES = ("level", "ref_level", "parent", "polarity", "rho_root")


@dataclass(frozen=True)
class Run:
    """One run's finished evaluation rows; metrics arrays all start with the epoch axis."""

    path: Path
    attrs: dict
    config: dict
    hltm: dict
    metrics: dict

    @property
    def n_rows(self):
        """Finished evaluation rows: epochs + 1 for a complete run, fewer for a killed one."""
        return len(self.metrics["epoch"])

    @property
    def complete(self):
        return self.n_rows == self.config["epochs"] + 1

    @property
    def depth(self):
        return self.config["depth"]

    def level_mean(self, name):
        """Mean over each level's nodes of a per-node metric: [rows, depth]."""
        values = self.metrics[name]
        level = self.hltm["level"]
        return np.stack([values[:, level == lv].mean(axis=1) for lv in range(self.depth)], axis=1)


def metrics_path(path):
    """A run may be named by its directory or by its metrics.h5."""
    path = Path(path)
    return path / "metrics.h5" if path.is_dir() else path


def load_run(path):
    """Read and check one run; raise InputError naming the file if it is not dualnet's."""
    path = metrics_path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        file = h5py.File(path, "r", locking=False)
    except OSError as err:
        raise InputError(f"{path}: cannot be opened as HDF5 ({_one_line(err)})") from None
    try:
        with file:
            attrs = _root_attrs(path, file)
            config = _config(path, attrs["config_toml"])
            sizes = _sizes(path, config)
            hltm = {name: _dataset(path, file, f"hltm/{name}", (sizes["latent"],), 0)[()] for name in HLTM_NAMES}
            metrics = _metrics(path, file, sizes)
    except OSError as err:  # a writer killed mid-write can leave unreadable chunks
        raise InputError(f"{path}: damaged HDF5 ({_one_line(err)})") from None
    return Run(path=path, attrs=attrs, config=config, hltm=hltm, metrics=metrics)


def _one_line(err):
    return " ".join(str(err).split())


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _root_attrs(path, file):
    fmt = _text(file.attrs.get("format", ""))
    if not isinstance(fmt, str) or fmt != FORMAT:
        raise InputError(f"{path}: not a dualnet metrics file (format attribute {fmt!r}, expected {FORMAT!r})")
    version = file.attrs.get("format_version")
    if not (np.isscalar(version) and version == FORMAT_VERSION):
        raise InputError(f"{path}: unsupported format_version {version} (this analysis reads {FORMAT_VERSION})")
    if not isinstance(_text(file.attrs.get("config_toml")), str):
        raise InputError(f"{path}: missing text attribute config_toml")
    return {key: _text(value) for key, value in file.attrs.items()}


def _config(path, text):
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: config_toml is not valid TOML ({_one_line(err)})") from None
    missing = [key for key in ("depth", "num_children", "hid", "epochs", "seed") if key not in config]
    if missing:
        raise InputError(f"{path}: config_toml lacks {', '.join(missing)}")
    return config


def _sizes(path, config):
    """Axis lengths implied by the configuration, used to check every dataset's shape."""
    depth, k, hid = config["depth"], config["num_children"], config["hid"]
    if depth < 1 or k < 2 or hid < 1:
        raise InputError(f"{path}: config_toml has an impossible tree (depth {depth}, num_children {k}, hid {hid})")
    n_latent = (k**depth - 1) // (k - 1)
    return {"latent": n_latent, "hid": hid, "level": depth, "neuron": n_latent * hid}


def _dataset(path, file, name, trailing, leading_axis):
    """The dataset /name, checked to have shape `trailing` after an optional leading epoch axis."""
    data = file.get(name)
    if not isinstance(data, h5py.Dataset):
        raise InputError(f"{path}: missing dataset /{name}")
    if data.shape[leading_axis:] != trailing:
        expected = ", ".join(map(str, ("epochs",) * leading_axis + trailing))
        raise InputError(f"{path}: /{name} has shape {data.shape}, config_toml implies ({expected})")
    return data


def _metrics(path, file, sizes):
    """Read /metrics keeping only the rows a killed writer finished.

    Those are: rows every dataset holds (it may have died between extending one dataset and
    the next), that can be read (a row whose data had not reached the file lies past its
    end), and whose epoch scale reads 0, 1, 2, ...
    """
    dims = METRICS_DIMS | {name: d for name, d in OPTIONAL_METRICS_DIMS.items() if f"metrics/{name}" in file}
    dims = {"epoch": ()} | dims
    data = {name: _dataset(path, file, f"metrics/{name}", tuple(sizes[d] for d in trailing), 1)
            for name, trailing in dims.items()}
    rows = min(len(d) for d in data.values())
    while (metrics := _read_rows(data, rows)) is None:
        rows -= 1
    written = metrics["epoch"] == np.arange(rows)
    rows = rows if written.all() else int(np.argmin(written))
    if rows == 0:
        raise InputError(f"{path}: no finished evaluation (the run stopped before epoch 0 was measured)")
    return {name: values[:rows] for name, values in metrics.items()}


def _read_rows(data, rows):
    """The first `rows` rows of every dataset, or None when one lies past the end of the file."""
    try:
        return {name: d[:rows] for name, d in data.items()}
    except OSError:
        return None
