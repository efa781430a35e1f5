"""`table`: mean ± std over seeds of the per-level best correlation, per configuration.

A configuration is every science key (sweep.py), never only the displayed ones. Markdown is
wide, one row per configuration like the paper's tables, with the keys all runs share
stated once above it; CSV is long, one row per configuration and level, and carries every
science key so that it stands on its own.
"""

import csv
from dataclasses import dataclass

import numpy as np

from .markdown import mean_std, table
from .sweep import label, value_text


@dataclass(frozen=True)
class ConfigStats:
    """Seed statistics of one configuration; arrays are indexed by level (0 = root)."""

    config: dict  # every grouping key -> value
    seeds: list
    final_epochs: list
    n_unfinished: int
    n_collapsed: int  # runs whose last row is collapsed (docs/metrics-format.md#collapse)
    n_collapse_unknown: int  # runs whose files predate the collapse datasets
    init_mean: np.ndarray
    init_std: np.ndarray
    final_mean: np.ndarray
    final_std: np.ndarray

    @property
    def depth(self):
        return len(self.init_mean)

    def values(self, keys):
        return tuple(self.config[key] for key in keys)


def config_stats(config, runs):
    """Init (row 0) and final (last finished row) level_mean_best_corr over the runs' seeds.

    All runs share `config`, depth included, so their level arrays have one length.
    """
    init = np.stack([run.metrics["level_mean_best_corr"][0] for run in runs])
    final = np.stack([run.metrics["level_mean_best_corr"][-1] for run in runs])
    return ConfigStats(config=dict(config), seeds=[run.config["seed"] for run in runs],
                       final_epochs=sorted({run.n_rows - 1 for run in runs}),
                       n_unfinished=sum(not run.complete for run in runs),
                       n_collapsed=sum(run.collapsed is True for run in runs),
                       n_collapse_unknown=sum(run.collapsed is None for run in runs),
                       init_mean=init.mean(axis=0), init_std=_std(init),
                       final_mean=final.mean(axis=0), final_std=_std(final))


def sweep_stats(sweep, shown):
    """ConfigStats of every configuration, in the order of the shown keys."""
    return [config_stats(dict(zip(sweep.keys, values)), sweep.groups[values]) for values in sweep.ordered(shown)]


def _std(values):
    """Sample standard deviation over seeds (axis 0); undefined (NaN) for a single seed."""
    if len(values) < 2:
        return np.full(values.shape[1], np.nan)
    return values.std(axis=0, ddof=1)


def _epochs(stats):
    return "/".join(map(str, stats.final_epochs))


def collapsed_text(stats):
    """'1/2': collapsed seeds of all; seeds of unknown collapse are counted apart, not as healthy."""
    known = len(stats.seeds) - stats.n_collapse_unknown
    if known == 0:
        return "?"
    text = f"{stats.n_collapsed}/{known}"
    return f"{text} (+{stats.n_collapse_unknown} unknown)" if stats.n_collapse_unknown else text


def preamble(sweep, shown):
    """The lines above the table: keys every run shares, and varying keys left out by --by."""
    constant = {key: value for key, value in sweep.constant.items() if key not in shown}
    lines = [f"Constant over all runs: {label(constant, constant.values()) or '(nothing)'}"]
    hidden = [key for key in sweep.varying if key not in shown]
    if hidden:
        lines.append(f"Varying but not shown (--by): {', '.join(hidden)}")
    return "\n".join(lines) + "\n\n"


def markdown(shown, stats, sweep=None):
    depth = max(s.depth for s in stats)
    header = [*shown, "seeds", "final epoch", "collapsed"]
    header += [f"L{lv} {when}" for lv in range(depth) for when in ("init", "final")]
    rows = []
    for s in stats:
        cells = [*map(value_text, s.values(shown)), len(s.seeds), _epochs(s), collapsed_text(s)]
        for lv in range(depth):
            if lv < s.depth:
                cells += [mean_std(s.init_mean[lv], s.init_std[lv]), mean_std(s.final_mean[lv], s.final_std[lv])]
            else:
                cells += ["", ""]
        rows.append(cells)
    note = ("\nMean ± sample std over seeds of the per-level mean best_corr; L0 is the root "
            "(the reference's level d = depth − L). collapsed: seeds whose network collapsed "
            "(docs/metrics-format.md#collapse; --exclude-collapsed drops them).\n")
    return (preamble(sweep, shown) if sweep is not None else "") + table(header, rows) + note


def write_csv(path, shown, stats, keys=None):
    """Long CSV; columns: the shown keys, then every other grouping key, then the numbers."""
    keys = [*shown, *(key for key in (keys or []) if key not in shown)]
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*keys, "n_seeds", "seeds", "final_epoch", "n_unfinished", "n_collapsed",
                         "n_collapse_unknown", "level", "ref_level",
                         "init_mean", "init_std", "final_mean", "final_std"])
        for s in stats:
            for lv in range(s.depth):
                writer.writerow([*map(value_text, s.values(keys)), len(s.seeds), " ".join(map(str, s.seeds)),
                                 _epochs(s), s.n_unfinished, s.n_collapsed, s.n_collapse_unknown, lv, s.depth - lv,
                                 s.init_mean[lv], s.init_std[lv], s.final_mean[lv], s.final_std[lv]])
