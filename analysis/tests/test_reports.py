"""`summary` and `table`: every printed number equals one computed from the HDF5 datasets."""

import csv

import numpy as np

from conftest import SWEEP_HID, SWEEP_SEEDS, finished_rows
from dualnet_analysis.run import COLLAPSE_GAP
from helpers import level_means, read


def test_summary_numbers(runs, analyze):
    code, out, _ = analyze("summary", runs["single"])
    assert code == 0
    best = read(runs["single"], "metrics/level_mean_best_corr")
    loss, sem = read(runs["single"], "metrics/train_loss_mean"), read(runs["single"], "metrics/train_loss_sem")
    assert f"last pass {loss[-1]:.6f} ± {sem[-1]:.6f}" in out
    for lv in range(3):
        cells = [f"{best[0, lv]:.4f}", f"{best[-1, lv]:.4f}"]
        for name in ("metrics/covop_norm_ref", "metrics/covop_norm_paper"):
            cells += [f"{level_means(runs['single'], name, row)[lv]:.3e}" for row in (0, -1)]
        row = f"| {lv} | {3 - lv} | {2**lv} | " + " | ".join(cells[:6]) + " |"
        assert row in out


def test_summary_of_partial_run(runs, analyze):
    code, out, err = analyze("summary", runs["partial"])
    assert code == 0
    rows = finished_rows(runs["partial"] / "metrics.h5")
    assert f"final = epoch {rows - 1}" in out and "PARTIAL" in out
    assert "partial" in err and str(runs["partial"]) in err


def expected_stats(run_dirs):
    """Init and final level means over seeds straight from the files: mean and sample std."""
    init = np.stack([read(d, "metrics/level_mean_best_corr")[0] for d in run_dirs])
    final = np.stack([read(d, "metrics/level_mean_best_corr")[-1] for d in run_dirs])
    return init.mean(0), init.std(0, ddof=1), final.mean(0), final.std(0, ddof=1)


def last_row_collapsed(run_dir):
    """The collapse rule of docs/metrics-format.md#collapse at the last row, from the datasets."""
    gap, change = read(run_dir, "metrics/output_rank1_gap"), read(run_dir, "metrics/weight_change")
    return bool(gap[-1] <= COLLAPSE_GAP or (change[-1] == 0).all())


def test_table_matches_hdf5(runs, analyze, tmp_path):
    code, out, _ = analyze("table", runs["sweep"], "--by", "hid", "--csv", tmp_path / "t.csv")
    assert code == 0
    with open(tmp_path / "t.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(SWEEP_HID) * 3
    for hid in SWEEP_HID:
        init_mean, init_std, final_mean, final_std = expected_stats(
            [runs["sweep"] / f"hid{hid}/seed{s}" for s in SWEEP_SEEDS])
        mine = [r for r in rows if r["hid"] == str(hid)]
        assert [int(r["level"]) for r in mine] == [0, 1, 2]
        for lv, r in enumerate(mine):
            assert r["n_seeds"] == "2" and r["seeds"] == "1 2" and r["final_epoch"] == "2"
            got = [float(r[c]) for c in ("init_mean", "init_std", "final_mean", "final_std")]
            np.testing.assert_allclose(got, [init_mean[lv], init_std[lv], final_mean[lv], final_std[lv]], rtol=1e-12)
        cells = " | ".join(f"{m[lv]:.4f} ± {s[lv]:.4f}" for lv in range(3)
                           for m, s in ((init_mean, init_std), (final_mean, final_std)))
        collapsed = sum(last_row_collapsed(runs["sweep"] / f"hid{hid}/seed{s}") for s in SWEEP_SEEDS)
        assert {r["n_collapsed"] for r in mine} == {str(collapsed)} and {r["n_collapse_unknown"] for r in mine} == {"0"}
        assert f"| {hid} | 2 | 2 | {collapsed}/2 | {cells} |" in out


def test_table_default_keys(runs, analyze):
    """Without --by: the keys that vary as columns, the others once above the table."""
    code, out, err = analyze("table", runs["sweep"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("Constant over all runs: depth=3, num_children=2, delta_lower=0.8")
    assert "epochs=2" in lines[0] and "hid=" not in lines[0] and "seed" not in lines[0] and "out=" not in lines[0]
    assert lines[2].startswith("| hid | seeds | final epoch | collapsed |")
    assert len([line for line in lines if line.startswith("| ") and "±" in line]) == len(SWEEP_HID)
