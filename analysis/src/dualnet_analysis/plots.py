"""`plot`: PNG figures of runs, per configuration (seed mean and band) and per run.

Figures are built on matplotlib's Figure object, not pyplot, so no GUI backend or
global figure state is involved.
"""

import os
import sys
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .sweep import label, slug


def plot_groups(groups, keys, out):
    """Write every figure for the configurations in `groups` into `out`; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for values, runs in groups.items():
        name = label(keys, values)
        stem = slug(name)
        written.append(_save(best_corr_figure(runs, name), out / f"best_corr_{stem}.png"))
        written.append(_save(covop_figure(runs, name), out / f"covop_norm_{stem}.png"))
        written.append(_save(rho_root_figure(runs, name), out / f"best_corr_vs_rho_{stem}.png"))
        if all("covop_alignment" in run.metrics for run in runs):
            written.append(_save(alignment_figure(runs, name), out / f"covop_alignment_{stem}.png"))
            written.append(_save(spectrum_figure(runs, name), out / f"covop_spectrum_{stem}.png"))
        else:
            print(f"note: {name}: a run has no covop_alignment (written by an older dualnet); "
                  "alignment and spectrum figures skipped", file=sys.stderr)
    runs = [run for group in groups.values() for run in group]
    for run, run_name in zip(runs, run_names(runs)):
        if "corr_full" not in run.metrics:
            print(f"note: {run.path} has no corr_full (run with corr_full=false); heat map skipped", file=sys.stderr)
            continue
        written.append(_save(corr_full_figure(run, run_name), out / f"corr_full_{slug(run_name)}.png"))
    return written


def run_names(runs):
    """Short unique names: each file's path below the directory all runs' grandparents share."""
    paths = [run.path.resolve() for run in runs]
    common = Path(os.path.commonpath([p.parent.parent for p in paths]))
    names = []
    for path in paths:
        rel = path.relative_to(common)
        names.append(str(rel.parent if rel.name == "metrics.h5" else rel.with_suffix("")))
    return names


def _save(fig, path):
    fig.savefig(path, dpi=100)
    return path


def _seed_band(curves):
    """Mean and std over seeds per epoch; shorter (killed) runs count only where they have rows."""
    rows = max(len(c) for c in curves)
    padded = np.full((len(curves), rows, *curves[0].shape[1:]), np.nan)
    for i, c in enumerate(curves):
        padded[i, : len(c)] = c
    return np.nanmean(padded, axis=0), np.nanstd(padded, axis=0)


def _level_colours(depth):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(lv / max(depth - 1, 1)) for lv in range(depth)]


def _levels_against_epoch(ax, curves, depth):
    """One line per level with a ±std band over seeds."""
    mean, std = _seed_band(curves)
    epochs = np.arange(len(mean))
    for lv, colour in enumerate(_level_colours(depth)):
        ax.plot(epochs, mean[:, lv], color=colour, marker=".", label=f"L{lv} (d={depth - lv})")
        ax.fill_between(epochs, mean[:, lv] - std[:, lv], mean[:, lv] + std[:, lv], color=colour, alpha=0.25)
    ax.set_xlabel("epoch (0 = initialisation)")
    ax.grid(alpha=0.3)


def best_corr_figure(runs, name):
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    _levels_against_epoch(ax, [run.metrics["level_mean_best_corr"] for run in runs], runs[0].depth)
    ax.set_ylabel("mean best |corr| of level")
    ax.set_title(f"{name}  ({len(runs)} seed(s), band ±std)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def covop_figure(runs, name):
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    for i, (metric, title) in enumerate([("covop_norm_ref", "reference reshape"), ("covop_norm_paper", "paper's K")]):
        ax = fig.add_subplot(1, 2, i + 1)
        curves = [run.level_mean(metric) for run in runs]
        _levels_against_epoch(ax, curves, runs[0].depth)
        if all(np.all(c > 0) for c in curves):
            ax.set_yscale("log")
        ax.set_ylabel("covariance-operator norm (level mean)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}  ({len(runs)} seed(s), band ±std)", fontsize=9)
    return fig


def _nanmean(values, axis):
    """Mean ignoring NaN (nodes whose operator vanishes); NaN, silently, where all are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _level_nanmean(run, values):
    """Mean over each level's nodes of a per-node metric, ignoring NaN: [rows, depth]."""
    level = run.hltm["level"]
    return np.stack([_nanmean(values[:, level == lv], 1) for lv in range(run.depth)], axis=1)


def alignment_figure(runs, name):
    """|<vec W_mu, top eigenvector of OP_mu>| / |W_mu|: level means over epochs, and every node
    at initialisation against the last epoch (above the diagonal: training amplified it)."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    depth = runs[0].depth
    ax = fig.add_subplot(1, 2, 1)
    _levels_against_epoch(ax, [_level_nanmean(run, run.metrics["covop_alignment"]) for run in runs], depth)
    ax.set_ylabel("alignment of W_mu with OP_mu's top eigenvector (level mean)")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    for lv, colour in enumerate(_level_colours(depth)):
        first = np.concatenate([run.metrics["covop_alignment"][0][run.hltm["level"] == lv] for run in runs])
        last = np.concatenate([run.metrics["covop_alignment"][-1][run.hltm["level"] == lv] for run in runs])
        ax.scatter(first, last, color=colour, s=18, label=f"L{lv} (d={depth - lv})")
    ax.plot([0, 1], [0, 1], color="k", lw=0.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("alignment at initialisation")
    ax.set_ylabel("alignment at the last finished epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"{name}  ({len(runs)} seed(s)): alignment with the covariance operator", fontsize=9)
    return fig


def spectrum_figure(runs, name):
    """Eigenvalues of p0 p1 Delta^T Delta per node: the level mean of the top eigenvalue over
    epochs, and the level-mean spectrum (normalised by its top) at initialisation and at the end."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    depth = runs[0].depth
    ax = fig.add_subplot(1, 2, 1)
    curves = [_level_nanmean(run, run.metrics["covop_eigenvalues"][:, :, 0]) for run in runs]
    _levels_against_epoch(ax, curves, depth)
    if all(np.all(c[np.isfinite(c)] > 0) for c in curves):
        ax.set_yscale("log")
    ax.set_ylabel("top eigenvalue of OP_mu (level mean)")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    for lv, colour in enumerate(_level_colours(depth)):
        for row, style in ((0, "--"), (-1, "-")):
            spectra = np.concatenate([run.metrics["covop_eigenvalues"][row][run.hltm["level"] == lv] for run in runs])
            with np.errstate(all="ignore"):
                normalised = spectra / spectra[:, :1]
            mean = _nanmean(np.where(np.isfinite(normalised), normalised, np.nan), 0)
            ax.plot(np.arange(1, len(mean) + 1), mean, style, color=colour, marker=".",
                    label=f"L{lv} {'init' if row == 0 else 'last'}")
    ax.set_xlabel("eigenvalue index j")
    ax.set_ylabel("lambda_j / lambda_1 (level mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"{name}  ({len(runs)} seed(s)): spectrum of the covariance operator per node "
                 "(dashed: initialisation, solid: last epoch)", fontsize=9)
    return fig


def rho_root_figure(runs, name):
    """best_corr per node against |rho_root|, pooled over seeds.

    best_corr is a maximum of |corr|, so it cannot see the sign of the polarity product;
    |rho_root|, the correlation of the node with the root, is the informative axis.
    """
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    depth = runs[0].depth
    rho = np.concatenate([np.abs(run.hltm["rho_root"]) for run in runs])
    level = np.concatenate([run.hltm["level"] for run in runs])
    for i, (row, title) in enumerate([(0, "initialisation"), (-1, "after training (last finished epoch)")]):
        ax = fig.add_subplot(1, 2, i + 1, sharey=fig.axes[0] if fig.axes else None)
        best = np.concatenate([run.metrics["best_corr"][row] for run in runs])
        for lv, colour in enumerate(_level_colours(depth)):
            ax.scatter(rho[level == lv], best[level == lv], color=colour, s=18, label=f"L{lv} (d={depth - lv})")
        ax.set_xlabel("|rho_root| (product of polarities from the root)")
        ax.set_ylabel("best |corr| of node")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}  ({len(runs)} seed(s), every node)", fontsize=9)
    return fig


def corr_full_figure(run, name):
    """Signed correlation of every latent with every neuron; level borders drawn as lines."""
    corr = run.metrics["corr_full"]
    hid = run.config["hid"]
    borders = np.flatnonzero(np.diff(run.hltm["level"])) + 0.5
    fig = Figure(figsize=(12, 5), layout="constrained")
    for i, (row, title) in enumerate([(0, "initialisation"), (len(corr) - 1, f"epoch {len(corr) - 1}")]):
        ax = fig.add_subplot(1, 2, i + 1)
        image = ax.imshow(corr[row], cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        for b in borders:
            ax.axhline(b, color="k", lw=0.5)
            ax.axvline((b + 0.5) * hid - 0.5, color="k", lw=0.5)
        ax.set_xlabel(f"neuron (node = neuron // {hid})")
        ax.set_ylabel("latent node (breadth-first)")
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=fig.axes, label="Pearson corr(latent, pre-activation)")
    fig.suptitle(f"{name}: latent × neuron correlation", fontsize=9)
    return fig
