"""`table`: mean ± std over seeds of the per-level best correlation, per configuration.

Markdown is wide, one row per configuration like the paper's tables; CSV is long, one row
per configuration and level, for further analysis.
"""

import csv
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .markdown import mean_std, table
from .sweep import label


@dataclass(frozen=True)
class ConfigStats:
    """Seed statistics of one configuration; arrays are indexed by level (0 = root)."""

    values: tuple
    seeds: list
    final_epochs: list
    init_mean: np.ndarray
    init_std: np.ndarray
    final_mean: np.ndarray
    final_std: np.ndarray

    @property
    def depth(self):
        return len(self.init_mean)


def config_stats(keys, values, runs):
    """Init (row 0) and final (last finished row) level_mean_best_corr over the runs' seeds."""
    depths = {run.depth for run in runs}
    if len(depths) > 1:
        raise InputError(f"{runs[0].path}: runs of configuration {label(keys, values)} differ in depth "
                         f"{sorted(depths)}; add depth to --by")
    init = np.stack([run.metrics["level_mean_best_corr"][0] for run in runs])
    final = np.stack([run.metrics["level_mean_best_corr"][-1] for run in runs])
    return ConfigStats(values=values, seeds=[run.config["seed"] for run in runs],
                       final_epochs=sorted({run.n_rows - 1 for run in runs}),
                       init_mean=init.mean(axis=0), init_std=_std(init),
                       final_mean=final.mean(axis=0), final_std=_std(final))


def _std(values):
    """Sample standard deviation over seeds (axis 0); undefined (NaN) for a single seed."""
    if len(values) < 2:
        return np.full(values.shape[1], np.nan)
    return values.std(axis=0, ddof=1)


def _epochs(stats):
    return "/".join(map(str, stats.final_epochs))


def markdown(keys, stats):
    depth = max(s.depth for s in stats)
    header = [*keys, "seeds", "final epoch"]
    header += [f"L{lv} {when}" for lv in range(depth) for when in ("init", "final")]
    rows = []
    for s in stats:
        cells = [*s.values, len(s.seeds), _epochs(s)]
        for lv in range(depth):
            if lv < s.depth:
                cells += [mean_std(s.init_mean[lv], s.init_std[lv]), mean_std(s.final_mean[lv], s.final_std[lv])]
            else:
                cells += ["", ""]
        rows.append(cells)
    note = ("\nMean ± sample std over seeds of the per-level mean best_corr; L0 is the root "
            "(the reference's level d = depth − L).\n")
    return table(header, rows) + note


def write_csv(path, keys, stats):
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*keys, "n_seeds", "seeds", "final_epoch", "level", "ref_level",
                         "init_mean", "init_std", "final_mean", "final_std"])
        for s in stats:
            for lv in range(s.depth):
                writer.writerow([*s.values, len(s.seeds), " ".join(map(str, s.seeds)), _epochs(s), lv,
                                 s.depth - lv, s.init_mean[lv], s.init_std[lv], s.final_mean[lv], s.final_std[lv]])
