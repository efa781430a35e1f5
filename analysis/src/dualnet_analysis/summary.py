"""`summary`: what one run learned, level by level, as markdown."""

import numpy as np

from .markdown import mean_std, number, table

CONFIG_SHOWN = ("depth", "num_children", "hid", "delta_lower", "delta_upper", "loss", "lr", "batch",
                "samples_per_pass", "epochs", "seed")


def summary(run):
    """Markdown for one run: provenance, training loss, per-level correlation and operator norms."""
    first, last = 0, run.n_rows - 1
    config = ", ".join(f"{key} {run.config[key]}" for key in CONFIG_SHOWN if key in run.config)
    state = "complete" if run.complete else f"PARTIAL: {run.n_rows} of {run.config['epochs'] + 1} evaluations"
    attrs = run.attrs
    lines = [
        f"## {run.path}",
        "",
        f"- config: {config}",
        f"- evaluations: {run.n_rows} ({state}); init = epoch {first}, final = epoch {last}",
        f"- build: dualnet {attrs.get('dualnet_version', '?')} ({attrs.get('git_commit', '?')}), "
        f"{attrs.get('execution_space', '?')}, world_size {attrs.get('world_size', '?')}",
        f"- training loss (mean ± sem over the pass's steps): {_loss(run)}",
        f"- collapse: {collapse_text(run)}",
        "",
    ]
    best = run.metrics["level_mean_best_corr"]
    ref, paper = run.level_mean("covop_norm_ref"), run.level_mean("covop_norm_paper")
    counts = np.bincount(run.hltm["latent_level"], minlength=run.depth)
    rows = [
        [lv, run.depth - lv, counts[lv], number(best[first, lv]), number(best[last, lv]),
         _sci(ref[first, lv]), _sci(ref[last, lv]), _sci(paper[first, lv]), _sci(paper[last, lv])]
        for lv in range(run.depth)
    ]
    header = ["level", "ref level", "nodes", "best_corr init", "best_corr final",
              "covop_ref init", "covop_ref final", "covop_paper init", "covop_paper final"]
    return "\n".join(lines) + "\n" + table(header, rows)


def _loss(run):
    """First and last training pass; row 0 has no pass before it."""
    mean, sem = run.metrics["train_loss_mean"], run.metrics["train_loss_sem"]
    if run.n_rows < 2:
        return "n/a (no training pass finished)"
    return f"first pass {mean_std(mean[1], sem[1], 6)}, last pass {mean_std(mean[-1], sem[-1], 6)}"


def collapse_text(run):
    """Whether the run collapsed (docs/metrics-format.md#collapse), with the last row's
    evidence, so a reader sees why its correlations may be those of a dead network."""
    if run.collapsed is None:
        return "unknown (the file has no output_rank1_gap / weight_change: written by an older dualnet)"
    state = f"COLLAPSED since epoch {run.collapse_epoch}" if run.collapsed else "no"
    root_dead = number(run.metrics["dead_fraction"][-1, 0]) if "dead_fraction" in run.metrics else "n/a"
    gap = run.metrics["output_rank1_gap"][-1]
    return (f"{state} (epoch {run.n_rows - 1}: output_rank1_gap {gap:.3e}, "
            f"dead fraction of the root {root_dead})")


def _sci(value):
    """Operator norms span orders of magnitude, so they print in scientific notation."""
    return f"{value:.3e}"
