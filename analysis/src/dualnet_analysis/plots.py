"""`plot` and `compare`: figures of runs for papers, in PNG, PDF and/or SVG.

Figures are built on matplotlib's Figure object, not pyplot, so no GUI backend or global
figure state is involved. Conventions, so that a figure can go into a paper as it is:
- labels are mathtext ($W_\\mu$, $\\lambda_j$); vector files keep text as text (SAVE_RC);
- nothing is clipped (constrained layout, and bbox_inches="tight" when saving);
- bands over seeds are mean ± sample std, taken of log10 values on log axes (geometric);
- index axes (epoch, eigenvalue index, node, neuron) get integer ticks;
- file names use only [a-z0-9-] plus "_" between parts (`file_stem`).
"""

import re
import sys
import warnings

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullLocator
from matplotlib.transforms import offset_copy

from .errors import InputError
from .sweep import ABSENT, label, value_text
from .table import config_stats

FORMATS = ("png", "pdf", "svg")
DEFAULT_DPI = 300
# Text stays text: SVG <text> elements and TrueType (Type 42) fonts in PDF, so a paper's
# figures can be searched, copied from and re-typeset.
SAVE_RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "ps.fonttype": 42}
# No creation dates, so re-running a command rewrites identical vector files.
_METADATA = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}

CORR = r"$|\mathrm{corr}|$"
# Axis labels of config keys the compare figure puts on its x axis.
KEY_LABELS = {
    "hid": r"neurons per latent node ($\mathrm{hid}$)",
    "delta_lower": r"lower bound of $|\delta|$ ($\delta_\mathrm{lower}$)",
    "delta_upper": r"upper bound of $|\delta|$ ($\delta_\mathrm{upper}$)",
    "lr": r"learning rate $\eta$",
    "temp": r"temperature $\tau$",
    "depth": r"depth $L$",
}


def file_stem(pairs, kind):
    """Shell- and LaTeX-friendly name: 'hid-10_delta-lower-0p8_loss-ref-nce_corr'.

    Each (key, value) becomes key-value; '.' in numbers becomes 'p', a minus sign 'm', '_'
    and anything else outside [a-z0-9] '-'; parts are joined by '_' and end with `kind`.
    """
    parts = [f"{_slug(key)}-{'absent' if value is ABSENT else _slug(value_text(value), number=True)}"
             for key, value in pairs]
    return "_".join([*parts, _slug(kind)])


def _slug(text, number=False):
    text = str(text).lower()
    if number:
        text = re.sub(r"(?<=\d)\.(?=\d)|^\.(?=\d)", "p", text)
        text = re.sub(r"(?<![a-z0-9])-(?=[\d.])|(?<=e)-(?=\d)", "m", text)
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text)).strip("-") or "x"


def save(fig, out, stem, formats, dpi):
    """Write fig as out/stem.<format> for each format; return the paths."""
    paths = []
    with matplotlib.rc_context(SAVE_RC):
        for fmt in formats:
            path = out / f"{stem}.{fmt}"
            fig.savefig(path, format=fmt, dpi=dpi,
                        metadata=_METADATA.get(fmt))
            paths.append(path)
    return paths


def _title(text):
    """Config values are not mathtext: a '$' in them must show as a dollar sign."""
    return text.replace("$", r"\$")


def _seeds(runs):
    """'2 seeds', or '2 seeds, 1 collapsed': a collapsed seed drags the mean, so say so."""
    n, collapsed = len(runs), sum(run.collapsed is True for run in runs)
    return f"{n} seed{'s' if n != 1 else ''}" + (f", {collapsed} collapsed" if collapsed else "")


def plot_groups(sweep, shown, out, formats=("png",), dpi=DEFAULT_DPI):
    """Every per-configuration and per-run figure for `sweep` into `out`; return the paths.

    `shown` are the keys that name a configuration in titles and file names.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for values in sweep.ordered(shown):
        runs = sweep.groups[values]
        pairs = list(zip(shown, sweep.project(values, shown)))
        name = _title(label(shown, sweep.project(values, shown)) or "all runs")
        figures = [("corr", best_corr_figure), ("covop-norm", covop_figure), ("corr-vs-rho", rho_root_figure)]
        if all("covop_alignment" in run.metrics for run in runs):
            figures += [("covop-alignment", alignment_figure), ("covop-spectrum", spectrum_figure)]
        else:
            print(f"note: {name}: a run has no covop_alignment (written by an older dualnet); "
                  "alignment and spectrum figures skipped", file=sys.stderr)
        for kind, make in figures:
            written += save(make(runs, name), out, file_stem(pairs, kind), formats, dpi)
    for run, pairs in _run_names(sweep, shown):
        run_name = _title(label(*zip(*pairs)))
        if "corr_full" not in run.metrics:
            print(f"note: {run.path} has no corr_full (run with corr_full=false); heat map skipped", file=sys.stderr)
            continue
        written += save(corr_full_figure(run, run_name), out, file_stem(pairs, "corr-full"), formats, dpi)
    return written


def _run_names(sweep, shown):
    """(run, [(key, value)...]) per run: its configuration's shown keys and its seed, plus
    'run-<n>' where that is not unique (a seed twice in a configuration)."""
    named = []
    for values in sweep.ordered(shown):
        for run in sweep.groups[values]:
            named.append((run, [*zip(shown, sweep.project(values, shown)), ("seed", run.config["seed"])]))
    counts, seen = {}, {}
    for _, pairs in named:
        counts[tuple(pairs)] = counts.get(tuple(pairs), 0) + 1
    result = []
    for run, pairs in named:
        if counts[tuple(pairs)] > 1:
            seen[tuple(pairs)] = seen.get(tuple(pairs), 0) + 1
            pairs = [*pairs, ("run", seen[tuple(pairs)])]
        result.append((run, pairs))
    return result


def _nanmean(values, axis):
    """Mean ignoring NaN (nodes whose operator vanishes); NaN, silently, where all are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _seed_band(curves, log=False):
    """(centre, low, high) per epoch over seeds; killed runs count only where they have rows.

    Linear: mean ± sample std. log: the same of log10(value), returned as 10^(m), 10^(m ± s),
    so the band stays positive and symmetric on the log axis it is drawn on.
    """
    rows = max(len(c) for c in curves)
    padded = np.full((len(curves), rows, *curves[0].shape[1:]), np.nan)
    for i, c in enumerate(curves):
        padded[i, : len(c)] = c
    if log:
        with np.errstate(all="ignore"):
            padded = np.where(padded > 0, np.log10(padded), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(padded, axis=0)
        count = np.sum(np.isfinite(padded), axis=0)
        std = np.where(count > 1, np.nanstd(padded, axis=0, ddof=1), np.nan)
    low, high = mean - std, mean + std
    return (10.0**mean, 10.0**low, 10.0**high) if log else (mean, low, high)


def _positive(curves):
    return all(np.all(c[np.isfinite(c)] > 0) for c in curves)


def _level_colours(depth):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(lv / max(depth - 1, 1) * 0.9) for lv in range(depth)]  # 0.9: no pale yellow


def _level_label(lv, depth):
    return f"level {lv} ($d={depth - lv}$)"


def _level_handles(depth, **style):
    return [Line2D([], [], color=colour, label=_level_label(lv, depth), **style)
            for lv, colour in enumerate(_level_colours(depth))]


def _integer_ticks(axis):
    axis.set_major_locator(MaxNLocator(integer=True))


def _levels_against_epoch(ax, curves, depth, log=False):
    """One line per level with a band of ±1 sample std over seeds (geometric on a log axis)."""
    centre, low, high = _seed_band(curves, log)
    epochs = np.arange(len(centre))
    for lv, colour in enumerate(_level_colours(depth)):
        ax.plot(epochs, centre[:, lv], color=colour, marker=".", label=_level_label(lv, depth))
        ax.fill_between(epochs, low[:, lv], high[:, lv], color=colour, alpha=0.25, lw=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch (0 = initialisation)")
    _integer_ticks(ax.xaxis)
    ax.grid(alpha=0.3)


def _band_note(runs, log=False):
    if len(runs) < 2:
        return f"{_seeds(runs)}, no band"
    return f"{_seeds(runs)}, band ±1 std" + (" of $\\log_{10}$" if log else "")


def _legend_right(fig, depth, **style):
    fig.legend(handles=_level_handles(depth, **style), loc="outside right upper", fontsize=8)


def best_corr_figure(runs, name):
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    _levels_against_epoch(ax, [run.metrics["level_mean_best_corr"] for run in runs], runs[0].depth)
    ax.set_ylabel(f"best {CORR} (level mean)")
    ax.set_title(f"{name}  ({_band_note(runs)})", fontsize=9)
    _legend_right(fig, runs[0].depth, marker=".")
    return fig


def covop_figure(runs, name):
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    log = True
    for i, (metric, title) in enumerate([("covop_norm_ref", "reference reshape"),
                                         ("covop_norm_paper", "paper's reshape ($K_l$)")]):
        ax = fig.add_subplot(1, 2, i + 1)
        curves = [run.level_mean(metric) for run in runs]
        log = _positive(curves)
        _levels_against_epoch(ax, curves, runs[0].depth, log=log)
        ax.set_ylabel(r"$p_0 p_1 \|\Delta^\top \Delta\|_F$ (level mean)")
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{name}  ({_band_note(runs, log)}): covariance-operator norm", fontsize=9)
    _legend_right(fig, runs[0].depth, marker=".")
    return fig


def _level_nanmean(run, values):
    """Mean over each level's nodes of a per-node metric, ignoring NaN: [rows, depth]."""
    level = run.hltm["latent_level"]
    return np.stack([_nanmean(values[:, level == lv], 1) for lv in range(run.depth)], axis=1)


def alignment_figure(runs, name):
    r"""Alignment $\|P\,\mathrm{vec}\,W_\mu\|/\|W_\mu\|_F$ with OP_mu's top eigenspace: level
    means over epochs, and every node at initialisation against the last epoch (above the
    diagonal: training amplified it)."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    depth = runs[0].depth
    ax = fig.add_subplot(1, 2, 1)
    _levels_against_epoch(ax, [_level_nanmean(run, run.metrics["covop_alignment"]) for run in runs], depth)
    ax.set_ylabel(r"alignment $\|P_\mu \mathrm{vec}\, W_\mu\| \,/\, \|W_\mu\|_F$")
    ax.set_title("level mean over epochs", fontsize=9)
    ax = fig.add_subplot(1, 2, 2)
    for lv, colour in enumerate(_level_colours(depth)):
        first = np.concatenate([run.metrics["covop_alignment"][0][run.hltm["latent_level"] == lv] for run in runs])
        last = np.concatenate([run.metrics["covop_alignment"][-1][run.hltm["latent_level"] == lv] for run in runs])
        ax.scatter(first, last, color=colour, s=18)
    ax.plot([0, 1], [0, 1], color="k", lw=0.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("alignment at initialisation")
    ax.set_ylabel("alignment at the last epoch")
    ax.set_title("every node (above the diagonal: amplified)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{name}  ({_band_note(runs)}): alignment of $W_\\mu$ with the top eigenspace "
                 r"$P_\mu$ of $\mathrm{OP}_\mu$", fontsize=9)
    _legend_right(fig, depth, marker=".")
    return fig


def spectrum_figure(runs, name):
    r"""Eigenvalues of $p_0 p_1 \Delta^\top\Delta$ per node: the level mean of the top eigenvalue
    over epochs, and the level-mean spectrum (normalised by its top) at initialisation and at
    the end."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    depth = runs[0].depth
    ax = fig.add_subplot(1, 2, 1)
    curves = [_level_nanmean(run, run.metrics["covop_eigenvalues"][:, :, 0]) for run in runs]
    log = _positive(curves)
    _levels_against_epoch(ax, curves, depth, log=log)
    ax.set_ylabel(r"top eigenvalue $\lambda_1$ of $\mathrm{OP}_\mu$ (level mean)")
    ax.set_title(f"over epochs ({_band_note(runs, log)})", fontsize=9)
    ax = fig.add_subplot(1, 2, 2)
    for lv, colour in enumerate(_level_colours(depth)):
        for row, style in ((0, "--"), (-1, "-")):
            level = [run.hltm["latent_level"] == lv for run in runs]
            spectra = np.concatenate([run.metrics["covop_eigenvalues"][row][sel] for run, sel in zip(runs, level)])
            with np.errstate(all="ignore"):
                normalised = spectra / spectra[:, :1]
            mean = _nanmean(np.where(np.isfinite(normalised), normalised, np.nan), 0)
            ax.plot(np.arange(1, len(mean) + 1), mean, style, color=colour, marker=".")
    ax.set_xlabel("eigenvalue index $j$")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel(r"$\lambda_j / \lambda_1$ (level mean)")
    ax.set_title("spectrum per node, normalised", fontsize=9)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{name}: spectrum of the covariance operator $\\mathrm{{OP}}_\\mu$", fontsize=9)
    handles = _level_handles(depth, marker=".")
    handles += [Line2D([], [], color="k", ls="--", label="initialisation"),
                Line2D([], [], color="k", ls="-", label="last epoch")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return fig


def rho_root_figure(runs, name):
    """best_corr per node against |rho_root|, pooled over seeds.

    best_corr is a maximum of |corr|, so it cannot see the sign of the polarity product;
    |rho_root|, the correlation of the node with the root, is the informative axis.
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    depth = runs[0].depth
    rho = np.concatenate([np.abs(run.hltm["rho_root"]) for run in runs])
    level = np.concatenate([run.hltm["latent_level"] for run in runs])
    for i, (row, title) in enumerate([(0, "initialisation"), (-1, "after training (last epoch)")]):
        ax = fig.add_subplot(1, 2, i + 1, sharey=fig.axes[0] if fig.axes else None)
        best = np.concatenate([run.metrics["best_corr"][row] for run in runs])
        for lv, colour in enumerate(_level_colours(depth)):
            ax.scatter(rho[level == lv], best[level == lv], color=colour, s=18)
        ax.set_xlabel(r"$|\rho_{0\mu}|$ (product of polarities from the root)")
        ax.set_ylabel(f"best {CORR} of node")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{name}  ({_seeds(runs)}, every node)", fontsize=9)
    _legend_right(fig, depth, marker="o", ls="")
    return fig


def corr_full_figure(run, name):
    """Signed correlation of every latent with every neuron; level borders drawn as lines."""
    corr = run.metrics["corr_full"]
    hid = run.config["hid"]
    borders = np.flatnonzero(np.diff(run.hltm["latent_level"])) + 0.5
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    for i, (row, title) in enumerate([(0, "initialisation"), (len(corr) - 1, f"epoch {len(corr) - 1}")]):
        ax = fig.add_subplot(1, 2, i + 1)
        image = ax.imshow(corr[row], cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        for b in borders:
            ax.axhline(b, color="k", lw=0.5)
            ax.axvline((b + 0.5) * hid - 0.5, color="k", lw=0.5)
        ax.set_xlabel(f"neuron $n$ (node $\\mu = \\lfloor n / {hid} \\rfloor$)")
        ax.set_ylabel(r"latent node $\mu$ (breadth-first)")
        _integer_ticks(ax.xaxis)
        _integer_ticks(ax.yaxis)
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=fig.axes, label=r"$\mathrm{corr}(z_\mu, h_n)$")
    fig.suptitle(f"{name}: latent × neuron correlation", fontsize=9)
    return fig


def compare_figures(sweep, x_keys, panel_key, out, formats=("png",), dpi=DEFAULT_DPI):
    """Final best |corr| per level (mean ± sample std over seeds) against each key of x_keys,
    one panel per value of panel_key; one figure per x key that takes two or more values.

    Configurations that differ in further keys become separate series (line style and
    marker), so nothing is averaged across configurations. Returns the paths written.
    """
    for key in [*x_keys, panel_key]:
        if key not in sweep.keys:
            raise InputError(f"{key}: no run's config_toml has this key (or it is the seed or a bookkeeping key)")
    out.mkdir(parents=True, exist_ok=True)
    stats = {values: config_stats(dict(zip(sweep.keys, values)), runs) for values, runs in sweep.groups.items()}
    written = []
    for x_key in x_keys:
        if x_key == panel_key or x_key not in sweep.varying:
            print(f"note: {x_key} takes one value in these runs; no comparison against it", file=sys.stderr)
            continue
        written += save(_compare_figure(sweep, stats, x_key, panel_key), out, file_stem([], f"compare-vs-{x_key}"),
                        formats, dpi)
    return written


_SERIES_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"), ((0, (1, 3)), "P")]


def _compare_figure(sweep, stats, x_key, panel_key):
    panel_values = sorted({sweep.value(v, panel_key) for v in sweep.groups}, key=_order)
    series_keys = [key for key in sweep.varying if key not in (x_key, panel_key)]
    series_values = sorted({sweep.project(v, series_keys) for v in sweep.groups}, key=lambda t: tuple(map(_order, t)))
    x_values = sorted({sweep.value(v, x_key) for v in sweep.groups}, key=_order)
    depth = max(s.depth for s in stats.values())
    colours = _level_colours(depth)
    fig = Figure(figsize=(max(3.3 * len(panel_values), 6.0), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panel_values), sharey=True, squeeze=False)[0]
    positions, scale = _x_positions(x_values)
    for ax, panel in zip(axes, panel_values):
        for si, ((ls, marker), series) in enumerate(zip(_cycle(_SERIES_STYLES, len(series_values)), series_values)):
            points = sorted((v for v in sweep.groups
                             if sweep.value(v, panel_key) == panel and sweep.project(v, series_keys) == series),
                            key=lambda v: _order(sweep.value(v, x_key)))
            if not points:
                continue
            x = [positions[sweep.value(v, x_key)] for v in points]
            for lv in range(depth):
                mean = [stats[v].final_mean[lv] if lv < stats[v].depth else np.nan for v in points]
                std = [stats[v].final_std[lv] if lv < stats[v].depth else np.nan for v in points]
                # Levels and series side by side (a few points apart), so error bars do not overlap.
                slots = depth * len(series_values)
                slot = lv * len(series_values) + si - (slots - 1) / 2
                step = min(2.5, 16.0 / max(slots - 1, 1))  # at most 16 points from first to last
                shift = offset_copy(ax.transData, fig=fig, x=slot * step, units="points")
                ax.errorbar(x, mean, yerr=np.nan_to_num(std), color=colours[lv], ls=ls, marker=marker, ms=4,
                            capsize=2, lw=1, elinewidth=0.8, transform=shift)
        _x_axis(ax, x_key, x_values, positions, scale)
        ax.set_title(_title(f"{panel_key} = {value_text(panel)}"), fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel(f"final best {CORR} (level mean)")
    counts = sorted({len(s.seeds) for s in stats.values()})
    n = "–".join(map(str, (counts[0], counts[-1]))) if len(counts) > 1 else str(counts[0])
    fig.suptitle(f"mean ± sample std over seeds ({n} per point); last finished epoch", fontsize=9)
    handles = _level_handles(depth, marker="o", ms=4)
    if series_keys:
        handles += [Line2D([], [], color="k", ls=ls, marker=marker, ms=4, label=_title(label(series_keys, series)))
                    for (ls, marker), series in zip(_cycle(_SERIES_STYLES, len(series_values)), series_values)]
    # Below the panels: a long list of series then adds rows instead of covering the title.
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize=8)
    return fig


def _order(value):
    return (0, value, "") if isinstance(value, int | float) and not isinstance(value, bool) else (1, 0, str(value))


def _cycle(items, n):
    return [items[i % len(items)] for i in range(n)]


def _x_positions(values):
    """Where each value of the x key sits: itself (log2 axis for a wide positive range such as
    hid), or its index when the values are not numbers."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numeric:
        return {v: i for i, v in enumerate(values)}, "index"
    if min(values) > 0 and max(values) / min(values) >= 4:
        return {v: v for v in values}, "log"
    return {v: v for v in values}, "linear"


def _x_axis(ax, key, values, positions, scale):
    if scale == "log":
        ax.set_xscale("log", base=2)
    ticks = [positions[v] for v in values]
    ax.set_xticks(ticks, [value_text(v) for v in values])
    ax.xaxis.set_minor_locator(NullLocator())
    if scale != "index" and len(ticks) > 1:  # room for the level shifts at both ends
        low, high = (np.log2(ticks[0]), np.log2(ticks[-1])) if scale == "log" else (ticks[0], ticks[-1])
        pad = 0.08 * (high - low)
        ax.set_xlim(*((2.0 ** (low - pad), 2.0 ** (high + pad)) if scale == "log" else (low - pad, high + pad)))
    elif scale == "index":
        ax.set_xlim(-0.5, len(ticks) - 0.5)
    ax.set_xlabel(KEY_LABELS.get(key, _title(key)))
