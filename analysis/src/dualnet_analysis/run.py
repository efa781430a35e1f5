"""Load one dualnet run (metrics.h5) into numpy arrays, checking the file's contract.

Every command reads runs through `load_run`, so the checks that refuse foreign files
and the rule for killed runs (keep only the finished evaluation rows) live here once.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .errors import InputError
from .sealed import verify_if_sealed

FORMAT = "dualnet-metrics"
# Version 2 files are sealed (dualnet_analysis.sealed, checked before h5py opens them), name
# /hltm/level and ref_level latent_level and latent_ref_level (below) and add the collapse
# datasets (OPTIONAL_METRICS_DIMS). Everything else is shared.
FORMAT_VERSIONS = (1, 2)
FORMAT_VERSION = FORMAT_VERSIONS[-1]

# Trailing dimensions of each /metrics dataset after the leading "epoch" axis: dualnet's list
# (metrics_datasets() in src/io/metrics_file.cpp), which tests/test_metrics_list.py checks
# this copy against, on a file the binary wrote.
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
# The collapse diagnostics (docs/metrics-format.md#collapse) are absent from files written
# before them, which must stay readable.
OPTIONAL_METRICS_DIMS = {
    "corr_full": ("latent", "neuron"),
    "covop_eigenvalues": ("latent", "hid"),
    "covop_alignment": ("latent",),
    "weight_change": ("latent",),
    "dead_fraction": ("latent",),
    "active_fraction": ("latent", "hid"),
    "output_rank1_gap": (),
}
# A row whose output_rank1_gap is at most this has every root output on one line
# (docs/metrics-format.md#collapse). The only place the threshold is written down.
COLLAPSE_GAP = 1e-6
COLLAPSE_METRICS = ("output_rank1_gap", "weight_change")
# Run.hltm uses version 2's names: /hltm/level would clash with /metrics' level axis in
# xr.merge. Version 1 files store the first two under their old names, renamed on load.
HLTM_NAMES = ("latent_level", "latent_ref_level", "parent", "polarity", "rho_root")
HLTM_V1_NAMES = {"latent_level": "level", "latent_ref_level": "ref_level"}
# Descriptive attributes of a variable that the xarray views carry (CF names plus dualnet's own).
VARIABLE_ATTRS = ("long_name", "units", "standard_name", "description", "comment")


@dataclass(frozen=True)
class Run:
    """One run's finished evaluation rows; metrics arrays all start with the epoch axis."""

    path: Path
    attrs: dict
    config: dict
    hltm: dict
    metrics: dict
    # {"metrics/corr": {"long_name": ..., "units": ...}, ...} with version 2's hltm names
    var_attrs: dict = field(default_factory=dict)

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

    @property
    def collapsed_rows(self):
        """Per finished row, whether it shows a collapsed network; None when the file lacks
        the datasets (written before them), so that collapse is never guessed."""
        return collapsed_rows(self.metrics)

    @property
    def collapsed(self):
        """True when the last finished row is collapsed; None if unknown."""
        rows = self.collapsed_rows
        return None if rows is None else bool(rows[-1])

    @property
    def collapse_epoch(self):
        """First collapsed row of a collapsed run; None if the run is not collapsed or unknown."""
        return int(np.argmax(self.collapsed_rows)) if self.collapsed else None

    def level_mean(self, name):
        """Mean over each level's nodes of a per-node metric: [rows, depth]."""
        values = self.metrics[name]
        level = self.hltm["latent_level"]
        return np.stack([values[:, level == lv].mean(axis=1) for lv in range(self.depth)], axis=1)


def collapsed_rows(metrics):
    """The collapse rule, in one place: row e >= 1 is collapsed when output_rank1_gap <=
    COLLAPSE_GAP (every output on one line, every root neuron dead included) or when no
    weight moved in the pass before it (every weight_change exactly 0). Row 0 follows no
    pass and is never collapsed. None without both datasets."""
    if any(name not in metrics for name in COLLAPSE_METRICS):
        return None
    gap, change = metrics["output_rank1_gap"], metrics["weight_change"]
    rows = (gap <= COLLAPSE_GAP) | np.all(change == 0, axis=1)
    rows[:1] = False
    return rows


def metrics_path(path):
    """A run may be named by its directory or by its metrics.h5."""
    path = Path(path)
    return path / "metrics.h5" if path.is_dir() else path


def load_run(path):
    """Read and check one run; raise InputError naming the file if it is not dualnet's."""
    path = metrics_path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    # The seal first (format version 2 on): h5py never parses damaged bytes. dualnet
    # replaces metrics.h5 whole (write, seal, rename) and never writes the file a reader has
    # open, so h5py's default file locking is fine, and it is what xarray and h5py use: one
    # process may then hold the file open in all three (mixed locking flags are refused).
    sealed = verify_if_sealed(path)
    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: cannot be opened as HDF5 ({_one_line(err)})") from None
    try:
        with file:
            attrs = _root_attrs(path, file)
            if attrs["format_version"] >= 2 and not sealed:
                raise InputError(f"{path}: format_version {attrs['format_version']} without its dualnet seal "
                                 "(damaged, or changed by another program)")
            config = _config(path, attrs["config_toml"])
            sizes = _sizes(path, config)
            hltm = {name: _dataset(path, file, _hltm_name(name, file), (sizes["latent"],), 0)[()]
                    for name in HLTM_NAMES}
            metrics = _metrics(path, file, sizes)
            var_attrs = _variable_attrs(file)
    except OSError as err:  # a writer killed mid-write can leave unreadable chunks
        raise InputError(f"{path}: damaged HDF5 ({_one_line(err)})") from None
    return Run(path=path, attrs=attrs, config=config, hltm=hltm, metrics=metrics, var_attrs=var_attrs)


def _one_line(err):
    return " ".join(str(err).split())


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _root_attrs(path, file):
    fmt = _text(file.attrs.get("format", ""))
    if not isinstance(fmt, str) or fmt != FORMAT:
        raise InputError(f"{path}: not a dualnet metrics file (format attribute {fmt!r}, expected {FORMAT!r})")
    version = file.attrs.get("format_version")
    if not (np.isscalar(version) and version in FORMAT_VERSIONS):
        readable = ", ".join(map(str, FORMAT_VERSIONS))
        raise InputError(f"{path}: unsupported format_version {version} (this analysis reads {readable})")
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


def _old_hltm_names(file):
    """Whether the file stores /hltm/level and /hltm/ref_level under their old names: decided
    by what the file holds, not by format_version (the first sealed version 2 files still
    hold the old names)."""
    return f"hltm/{HLTM_NAMES[0]}" not in file and f"hltm/{HLTM_V1_NAMES[HLTM_NAMES[0]]}" in file


def _hltm_name(name, file):
    """Path of an /hltm dataset given its new name, as this file stores it."""
    return f"hltm/{HLTM_V1_NAMES.get(name, name) if _old_hltm_names(file) else name}"


def _variable_attrs(file):
    """VARIABLE_ATTRS of every dataset in /metrics and /hltm (missing ones are simply absent)."""
    renamed = {old: new for new, old in HLTM_V1_NAMES.items()} if _old_hltm_names(file) else {}
    found = {}
    for group in ("metrics", "hltm"):
        for name, data in file.get(group, {}).items():
            kept = {key: _text(data.attrs[key]) for key in VARIABLE_ATTRS if key in data.attrs}
            if kept:
                name = renamed.get(name, name) if group == "hltm" else name
                found[f"{group}/{name}"] = kept
    return found


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
