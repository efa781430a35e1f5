"""Collapse (docs/metrics-format.md#collapse): real hid=2 runs, one collapsing and one
training, as `summary`, `table`, `plot` and the API see them; edited copies for the parts of
the rule real runs do not reach."""

import csv
import shutil

import h5py
import numpy as np
import pytest

from conftest import COLLAPSE_KEYS, COLLAPSING_SEED, TRAINING_SEED
from dualnet_analysis import load_run, load_sweep
from dualnet_analysis.run import COLLAPSE_GAP, collapsed_rows
from dualnet_analysis.sealed import seal
from helpers import read, version_1_copy


def sections(out):
    """summary's output per run: {path text: its lines}."""
    return {part.split("\n", 1)[0]: part for part in out.split("## ")[1:]}


def table_row(out):
    rows = [line for line in out.splitlines() if line.startswith("| ") and "±" in line]
    assert len(rows) == 1, out
    return rows[0]


def test_real_runs_collapse_as_dualnet_says(collapse_runs):
    collapsed, trained = load_run(collapse_runs["collapsed"]), load_run(collapse_runs["trained"])
    assert collapsed.collapsed is True and collapsed.collapse_epoch == 1
    assert trained.collapsed is False and trained.collapse_epoch is None
    gap = read(collapse_runs["collapsed"], "metrics/output_rank1_gap")
    assert (gap[1:] <= COLLAPSE_GAP).all()
    assert (read(collapse_runs["trained"], "metrics/output_rank1_gap")[1:] > 1e-3).all()
    assert list(collapsed.collapsed_rows) == [False] + [True] * COLLAPSE_KEYS["epochs"]
    np.testing.assert_array_equal(collapsed.metrics["dead_fraction"], read(collapse_runs["collapsed"],
                                                                           "metrics/dead_fraction"))
    assert collapsed.metrics["active_fraction"].shape == (COLLAPSE_KEYS["epochs"] + 1, 31, COLLAPSE_KEYS["hid"])
    # the binary's own warning agrees, and points at the section defining the rule
    warning = collapse_runs["stderr"][COLLAPSING_SEED]
    assert "collapsed by epoch 1" in warning and "docs/metrics-format.md#collapse" in warning
    assert "collapse" not in collapse_runs["stderr"][TRAINING_SEED]


def test_summary_says_which_run_collapsed(collapse_runs, analyze):
    code, out, err = analyze("summary", collapse_runs["collapsed"], collapse_runs["trained"])
    assert code == 0 and err == ""
    parts = sections(out)
    for key, state in (("collapsed", "COLLAPSED since epoch 1"), ("trained", "no")):
        run_dir = collapse_runs[key]
        gap, dead = read(run_dir, "metrics/output_rank1_gap")[-1], read(run_dir, "metrics/dead_fraction")[-1, 0]
        last = COLLAPSE_KEYS["epochs"]
        line = f"- collapse: {state} (epoch {last}: output_rank1_gap {gap:.3e}, dead fraction of the root {dead:.4f})"
        assert line in parts[str(run_dir / "metrics.h5")]


def test_table_counts_and_excludes_collapsed_seeds(collapse_runs, analyze, tmp_path):
    root = collapse_runs["root"]
    code, out, err = analyze("table", root, "--csv", tmp_path / "t.csv")
    assert code == 0 and err == ""
    assert "| seeds | final epoch | collapsed |" in out and table_row(out).startswith("| 2 | 2 | 1/2 |")
    with open(tmp_path / "t.csv") as file:
        assert {(r["n_collapsed"], r["n_seeds"]) for r in csv.DictReader(file)} == {("1", "2")}

    code, out, err = analyze("table", root, "--exclude-collapsed")
    assert code == 0
    dropped = collapse_runs["collapsed"] / "metrics.h5"
    assert err.splitlines() == [f"dualnet-analyze: note: dropped collapsed run {dropped} "
                                "(collapsed since epoch 1; --exclude-collapsed)"]
    best = read(collapse_runs["trained"], "metrics/level_mean_best_corr")
    assert table_row(out).startswith(f"| 1 | 2 | 0/1 | {best[0, 0]:.4f} ± n/a | {best[-1, 0]:.4f} ± n/a |")

    code, out, err = analyze("table", collapse_runs["collapsed"], "--exclude-collapsed")
    assert code == 2 and out == "" and "no run left (--exclude-collapsed)" in err.splitlines()[-1]


def test_sweep_api_carries_collapse(collapse_runs):
    ds = load_sweep(collapse_runs["root"])
    assert list(ds["seed"].values) == sorted((TRAINING_SEED, COLLAPSING_SEED))
    assert float(ds["collapsed"].sel(seed=COLLAPSING_SEED)) == 1 and float(ds["collapsed"].sel(seed=TRAINING_SEED)) == 0
    assert float(ds["collapse_epoch"].sel(seed=COLLAPSING_SEED)) == 1
    assert ds["weight_change"].dims == ("seed", "epoch", "latent")
    assert list(load_sweep(collapse_runs["root"], exclude_collapsed=True)["seed"].values) == [TRAINING_SEED]
    df = load_sweep(collapse_runs["root"], kind="dataframe")
    assert df.groupby("seed")["collapsed"].agg(set).to_dict() == {TRAINING_SEED: {False}, COLLAPSING_SEED: {True}}
    assert {"weight_change", "dead_fraction", "output_rank1_gap"} <= set(df.columns)


def test_plot_excludes_collapsed(collapse_runs, analyze, tmp_path):
    code, out, err = analyze("plot", collapse_runs["root"], "--out", tmp_path / "figs", "--dpi", "30",
                             "--exclude-collapsed")
    assert code == 0, err
    assert f"dropped collapsed run {collapse_runs['collapsed'] / 'metrics.h5'}" in err
    heat_maps = [line for line in out.splitlines() if line.endswith("corr-full.png")]
    assert len(heat_maps) == 1 and f"seed-{TRAINING_SEED}" in heat_maps[0]


def edited_copy(run_dir, dest, edit):
    dest.mkdir(parents=True)
    path = dest / "metrics.h5"
    shutil.copyfile(run_dir / "metrics.h5", path)
    with h5py.File(path, "r+") as file:
        edit(file)
    seal(path)
    return dest


@pytest.mark.parametrize("rows,collapsed,epoch", [((2,), True, 2), ((1,), False, None), ((1, 2), True, 1)])
def test_a_pass_that_moved_no_weight_is_collapse(collapse_runs, tmp_path, rows, collapsed, epoch):
    """Every weight_change of a row exactly 0: collapsed; only the last row decides the run."""
    def still(file):
        for row in rows:
            file["metrics/weight_change"][row] = 0.0

    run = load_run(edited_copy(collapse_runs["trained"], tmp_path / "still", still))
    assert run.collapsed is collapsed and run.collapse_epoch == epoch


def test_files_without_the_datasets_are_unknown(collapse_runs, analyze, tmp_path):
    old = version_1_copy(collapse_runs["collapsed"], tmp_path / "old")
    run = load_run(old)
    assert run.collapsed is None and run.collapse_epoch is None and run.collapsed_rows is None
    code, out, _ = analyze("summary", old)
    assert code == 0 and "- collapse: unknown" in out
    code, out, err = analyze("table", old, "--exclude-collapsed")  # kept: never guessed
    assert code == 0 and err == "" and table_row(out).startswith("| 1 | 2 | ? |")
    code, out, _ = analyze("table", old, collapse_runs["trained"])
    assert code == 0 and table_row(out).startswith("| 2 | 2 | 0/1 (+1 unknown) |")


def test_rule_at_its_edges():
    gap = np.array([0.0, COLLAPSE_GAP, 2 * COLLAPSE_GAP, np.nan, 0.5])
    change = np.array([[np.nan, np.nan], [0.1, 0.2], [0.1, 0.2], [0.1, 0.2], [0.0, 0.0]])
    rows = collapsed_rows({"output_rank1_gap": gap, "weight_change": change})
    # row 0 follows no pass; the threshold is inclusive; NaN is not collapse; no weight moved is
    assert list(rows) == [False, True, False, False, True]
    assert collapsed_rows({"output_rank1_gap": gap}) is None and collapsed_rows({"weight_change": change}) is None
