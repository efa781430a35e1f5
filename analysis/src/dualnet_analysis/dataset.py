"""Runs as xarray Datasets (needs the [xarray] extra) and sweeps as xarray or pandas.

Built from `load_run` rather than opened with h5netcdf so that a killed run shows only its
finished rows, like every other view of it, and so that format versions 1 and 2 look alike
(version 2's /hltm names, latent_level and latent_ref_level, in both). The variables'
descriptive attributes (long_name, units, ...; run.VARIABLE_ATTRS) are carried over where
the file has them.
"""

import itertools
import math
import os
from collections import Counter

import numpy as np

from .errors import InputError
from .run import METRICS_DIMS, OPTIONAL_METRICS_DIMS, load_run
from .sweep import ABSENT, configurations, drop_collapsed, drop_unfinished, find_runs, label, value_text

ALL_METRICS_DIMS = METRICS_DIMS | OPTIONAL_METRICS_DIMS
# In a sweep, "hid" names the swept config key; the per-node neuron axis becomes hid_index.
SWEEP_AXIS = {"hid": "hid_index"}
# Data axis -> the dimension scale in /metrics whose attributes describe it.
AXIS_SCALES = {"epoch": "epoch", "latent": "latent", "hid": "hid", "hid_index": "hid", "level": "level",
               "neuron": "neuron"}
HLTM_INT = ("latent_level", "latent_ref_level", "parent")
KINDS = ("auto", "dataset", "dataframe")


def load_dataset(path):
    """Dataset with dims epoch, latent, hid, level, neuron; node properties are latent coordinates."""
    import xarray as xr

    run = load_run(path)
    data_vars = {name: xr.Variable(("epoch", *ALL_METRICS_DIMS[name]), values, _attrs(run, f"metrics/{name}"))
                 for name, values in run.metrics.items() if name != "epoch"}
    hid, depth = run.config["hid"], run.depth
    n_latent = len(run.hltm["latent_level"])
    axes = {"epoch": run.metrics["epoch"], "latent": np.arange(n_latent), "hid": np.arange(hid),
            "level": np.arange(depth), "neuron": np.arange(n_latent * hid)}
    coords = {axis: xr.Variable(axis, values, _attrs(run, f"metrics/{AXIS_SCALES[axis]}"))
              for axis, values in axes.items()}
    coords |= {name: xr.Variable("latent", values, _attrs(run, f"hltm/{name}")) for name, values in run.hltm.items()}
    coords["neuron_node"] = ("neuron", np.arange(n_latent * hid) // hid, {"long_name": "latent node of the neuron"})
    attrs = run.attrs | {"path": str(run.path), "complete": int(run.complete)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _attrs(run, name):
    return dict(run.var_attrs.get(name, {}))


def _first_attrs(runs, name):
    """A variable's attributes, each from the first run that has it (runs of one dualnet
    write the same; older files lack some)."""
    merged = {}
    for run in runs:
        for key, value in run.var_attrs.get(name, {}).items():
            merged.setdefault(key, value)
    return merged


def load_sweep(paths, kind="auto", complete_only=False, exclude_collapsed=False):
    """Every run below `paths` (a directory, a run, or a list of them) as one object.

    kind="auto": an xarray Dataset when the runs form a full grid over the config keys that
    vary and the seed (each combination exactly once), else a tidy pandas DataFrame;
    kind="dataset" insists on the Dataset (InputError saying why not), kind="dataframe"
    always gives the DataFrame.

    Dataset: dims = the varying config keys (e.g. hid, loss), seed, then epoch and the data
    axes latent, hid_index (the per-node neuron index: "hid" is the config key here), level,
    neuron. Every /metrics variable (NaN where a run lacks it), the /hltm node arrays over
    latent, and per run: n_rows, complete, path, collapsed (1/0, NaN if unknown) and
    collapse_epoch (docs/metrics-format.md#collapse). Runs of unequal length are padded
    with NaN past their n_rows rows, and smaller trees or hid likewise (integer /hltm arrays
    pad with -1). Keys constant over all runs are attributes.

    DataFrame: one row per run, epoch and latent node; columns: the varying keys, seed,
    path, n_rows, complete, collapsed, collapse_epoch, epoch, latent, the /hltm node arrays,
    every per-node metric (best_corr, covop_*, weight_norm, weight_change, dead_fraction)
    and the per-epoch ones (train_loss_*, samples_per_s, output_rank1_gap).
    exclude_collapsed drops runs known to have collapsed, complete_only unfinished ones.
    Per-level means: df.groupby([..., "epoch", "latent_level"]).best_corr.mean(). Constant
    keys, the reason it is not a Dataset and the variables' attributes are in df.attrs.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    runs = find_runs([paths] if isinstance(paths, str | os.PathLike) else paths)
    if complete_only:
        runs, _ = drop_unfinished(runs)
        if not runs:
            raise InputError(f"{paths}: no complete run")
    if exclude_collapsed:  # runs of unknown collapse stay, as in `table --exclude-collapsed`
        runs, _ = drop_collapsed(runs)
        if not runs:
            raise InputError(f"{paths}: every run collapsed")
    sweep = configurations(runs)
    dims = list(sweep.varying)
    reason = _not_a_grid(sweep, dims)
    if kind == "dataframe" or (kind == "auto" and reason):
        return _frame(sweep, dims, runs, reason)
    if reason:
        raise InputError(f"{paths}: not a full grid, so no Dataset: {reason}")
    return _grid(sweep, dims, runs)


def _not_a_grid(sweep, dims):
    """Why the runs cannot fill a (varying keys × seed) array exactly once each; "" if they can."""
    for key in dims:
        if any(sweep.value(values, key) is ABSENT for values in sweep.groups):
            return f"config key {key} is absent from some runs' config_toml"
    for values, runs in sweep.groups.items():
        for seed, count in Counter(run.config["seed"] for run in runs).items():
            if count > 1:
                return f"{label(dims, sweep.project(values, dims))}: seed {seed} appears in {count} runs"
    cells = {(*sweep.project(values, dims), run.config["seed"])
             for values, runs in sweep.groups.items() for run in runs}
    axes = [sorted({cell[i] for cell in cells}, key=_order) for i in range(len(dims) + 1)]
    size = math.prod(len(axis) for axis in axes)
    if len(cells) < size:
        missing = next(cell for cell in itertools.product(*axes) if cell not in cells)
        return (f"{size - len(cells)} of {size} combinations of {', '.join([*dims, 'seed'])} have no run "
                f"(e.g. {label([*dims, 'seed'], missing)})")
    return ""


def _order(value):
    return (0, value, "") if isinstance(value, int | float) and not isinstance(value, bool) else (1, 0, str(value))


def _constant_attrs(sweep, runs):
    """Dataset attributes: the constant config keys, and the file attributes all runs share."""
    attrs = {key: value_text(value) if isinstance(value, bool) else value for key, value in sweep.constant.items()
             if value is not ABSENT}
    shared = {key: value for key, value in runs[0].attrs.items()
              if key != "config_toml" and all(np.array_equal(run.attrs.get(key), value) for run in runs)}
    return shared | attrs | {"swept_keys": ",".join(sweep.varying), "n_runs": len(runs)}


def _grid(sweep, dims, runs):
    import xarray as xr

    axes = {key: sorted({sweep.value(values, key) for values in sweep.groups}, key=_order) for key in dims}
    axes["seed"] = sorted({run.config["seed"] for run in runs})
    lead = tuple(len(axis) for axis in axes.values())
    where = {}
    for values, group in sweep.groups.items():
        for run in group:
            cell = (*sweep.project(values, dims), run.config["seed"])
            where[id(run)] = tuple(axis.index(v) for axis, v in zip(axes.values(), cell))
    sizes = {"epoch": max(run.n_rows for run in runs), "latent": max(len(run.hltm["latent_level"]) for run in runs),
             "hid_index": max(run.config["hid"] for run in runs), "level": max(run.depth for run in runs)}
    sizes["neuron"] = max(len(run.hltm["latent_level"]) * run.config["hid"] for run in runs)
    names = [name for name in ALL_METRICS_DIMS if any(name in run.metrics for run in runs)]
    lead_dims = tuple(axes)

    def stacked(get, trailing, fill, dtype):
        array = np.full(lead + tuple(sizes[d] for d in trailing), fill, dtype=dtype)
        for run in runs:
            values = get(run)
            if values is not None:
                array[where[id(run)] + tuple(slice(0, n) for n in values.shape)] = values
        return array

    data_vars = {}
    for name in names:
        trailing = ("epoch", *(SWEEP_AXIS.get(d, d) for d in ALL_METRICS_DIMS[name]))
        data_vars[name] = xr.Variable(lead_dims + trailing, stacked(lambda r, name=name: r.metrics.get(name), trailing,
                                                                    np.nan, float),
                                      _first_attrs(runs, f"metrics/{name}"))
    for name in runs[0].hltm:
        integer = name in HLTM_INT
        data_vars[name] = xr.Variable(lead_dims + ("latent",),
                                      stacked(lambda r, name=name: r.hltm[name], ("latent",), -1 if integer else np.nan,
                                              np.int64 if integer else float),
                                      _first_attrs(runs, f"hltm/{name}"))
    per_run = {
        "n_rows": (np.int64, 0, lambda r: r.n_rows,
                   "finished evaluation rows of the run (epochs + 1 when complete); later rows are NaN padding"),
        "complete": (bool, False, lambda r: r.complete, "the run finished every epoch of its config"),
        "path": (object, "", lambda r: str(r.path), "the run's metrics.h5"),
        "collapsed": (float, np.nan, lambda r: np.nan if r.collapsed is None else float(r.collapsed),
                      "1 when the run's last finished row shows a collapsed network, 0 when not, NaN when the "
                      "file cannot tell (docs/metrics-format.md#collapse)"),
        "collapse_epoch": (float, np.nan, lambda r: np.nan if r.collapse_epoch is None else r.collapse_epoch,
                           "first collapsed row of a collapsed run, NaN otherwise"),
    }
    for name, (dtype, fill, get, meaning) in per_run.items():
        array = np.full(lead, fill, dtype=dtype)
        for run in runs:
            array[where[id(run)]] = get(run)
        data_vars[name] = xr.Variable(lead_dims, array, {"long_name": meaning})
    coords = {key: xr.Variable(key, np.array(axis, dtype=object if any(isinstance(v, str) for v in axis) else None),
                               {"long_name": f"config_toml key {key}"})
              for key, axis in axes.items()}
    coords["seed"].attrs["long_name"] = "seed of polarities, weights and the sample stream"
    for axis, size in sizes.items():
        coords[axis] = xr.Variable(axis, np.arange(size), _first_attrs(runs, f"metrics/{AXIS_SCALES[axis]}"))
    return xr.Dataset(data_vars, coords=coords, attrs=_constant_attrs(sweep, runs))


def _frame(sweep, dims, runs, reason):
    import pandas as pd

    frames = []
    for values, group in sweep.groups.items():
        for run in group:
            rows, n_latent = run.n_rows, len(run.hltm["latent_level"])
            columns = {key: value for key, value in zip(dims, sweep.project(values, dims))}
            columns = {key: None if value is ABSENT else value for key, value in columns.items()}
            columns |= {"seed": run.config["seed"], "path": str(run.path), "n_rows": rows, "complete": run.complete,
                        "collapsed": run.collapsed, "collapse_epoch": run.collapse_epoch,
                        "epoch": np.repeat(run.metrics["epoch"], n_latent),
                        "latent": np.tile(np.arange(n_latent), rows)}
            columns |= {name: np.tile(values, rows) for name, values in run.hltm.items()}
            for name, metric in run.metrics.items():
                if name != "epoch" and ALL_METRICS_DIMS[name] == ("latent",):
                    columns[name] = metric.reshape(-1)
                elif name != "epoch" and ALL_METRICS_DIMS[name] == ():
                    columns[name] = np.repeat(metric, n_latent)
            frames.append(pd.DataFrame(columns))
    df = pd.concat(frames, ignore_index=True)
    df.attrs = {"constant": {k: v for k, v in sweep.constant.items() if v is not ABSENT},
                "why_not_dataset": reason,
                "variable_attrs": {name: _first_attrs(runs, name) for name in
                                   sorted({n for run in runs for n in run.var_attrs})}}
    return df
