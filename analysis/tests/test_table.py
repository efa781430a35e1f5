"""`table` groups by every science key and says, one line each, what could mislead."""

import csv

import h5py
import numpy as np

from conftest import SIX_EPOCHS
from dualnet_analysis.sealed import seal
from helpers import read


def table_rows(out):
    return [line for line in out.splitlines() if line.startswith("| ") and "±" in line]


def test_six_runs_of_one_seed_are_not_one_row(six_runs, analyze):
    """Same seed, epochs 0, 2, 2, 8, 20, 2: refused, because epochs=2 has seed 1 three times."""
    code, out, err = analyze("table", six_runs)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error: epochs=2: seed 1 appears in 3 runs" in lines[0] and "--allow-duplicates" in lines[0]


def test_six_runs_with_duplicates_allowed(six_runs, analyze, tmp_path):
    code, out, err = analyze("table", six_runs, "--allow-duplicates", "--csv", tmp_path / "t.csv")
    assert code == 0
    assert [line for line in err.splitlines()] == [
        "dualnet-analyze: warning: epochs=2: seed 1 appears in 3 runs "
        f"({', '.join(str(six_runs / f'r{i}' / 'metrics.h5') for i in (1, 2, 5))}); counted as 3 samples "
        "(--allow-duplicates)"]
    rows = table_rows(out)
    assert [row.split(" | ")[:3] for row in rows] == [["| 0", "1", "0"], ["| 2", "3", "2"], ["| 8", "1", "8"],
                                                     ["| 20", "1", "20"]]
    assert out.splitlines()[2].startswith("| epochs | seeds |")
    final = read(six_runs / "r3", "metrics/level_mean_best_corr")[-1]
    assert f"{final[0]:.4f} ± n/a" in rows[2]
    with open(tmp_path / "t.csv") as file:
        csv_rows = list(csv.DictReader(file))
    assert len(csv_rows) == len(set(SIX_EPOCHS)) * 3
    assert {r["hid"] for r in csv_rows} == {"2"} and {r["seeds"] for r in csv_rows} == {"1", "1 1 1"}


def test_by_shows_the_key_that_tells_rows_apart(six_runs, analyze):
    code, out, err = analyze("table", six_runs, "--allow-duplicates", "--by", "hid")
    assert code == 0
    assert "note: --by hid shows some configurations alike; also showing epochs" in err
    assert out.splitlines()[2].startswith("| hid | epochs | seeds |")
    assert len(table_rows(out)) == 4


def test_by_refuses_seed_and_bookkeeping_keys(runs, analyze):
    for key in ("seed", "out"):
        code, out, err = analyze("table", runs["sweep"], "--by", key)
        assert code == 2 and out == "" and f"--by {key}" in err and len(err.strip().splitlines()) == 1


def unfinished_copy(run_dir, dest, rows, seed):
    """A run killed after `rows` evaluations: a complete run's file cut short, with its own seed."""
    dest.mkdir(parents=True)
    path = dest / "metrics.h5"
    path.write_bytes((run_dir / "metrics.h5").read_bytes())
    with h5py.File(path, "r+") as file:
        file.attrs["config_toml"] = file.attrs["config_toml"].replace("seed = 1\n", f"seed = {seed}\n")
        for data in file["metrics"].values():
            if data.maxshape[0] is None:
                data.resize(rows, axis=0)
    seal(path)
    return dest


def test_unfinished_run_in_a_configuration(runs, analyze, tmp_path):
    killed = unfinished_copy(runs["single"], tmp_path / "killed", rows=2, seed=7)
    code, out, err = analyze("table", runs["sweep"] / "hid4", killed)
    assert code == 0
    warnings = err.strip().splitlines()
    assert len(warnings) == 2, err
    assert f"{killed / 'metrics.h5'} is unfinished (2 of 3 evaluations)" in warnings[0]
    assert "different numbers of finished evaluations (2, 3)" in warnings[1]
    assert table_rows(out)[0].startswith("| 3 | 1/2 |")  # nothing varies: seeds, then both final epochs

    code, out, err = analyze("table", runs["sweep"] / "hid4", killed, "--complete-only")
    assert code == 0
    assert err.strip().splitlines() == [f"dualnet-analyze: note: dropped unfinished run {killed / 'metrics.h5'} "
                                        "(2 of 3 evaluations; --complete-only)"]
    assert table_rows(out)[0].startswith("| 2 | 2 |")


def test_several_directories(runs, analyze):
    code, whole, _ = analyze("table", runs["sweep"])
    assert code == 0
    code, parts, err = analyze("table", runs["sweep"] / "hid2", runs["sweep"] / "hid4")
    assert code == 0 and parts == whole
    # a run reached through two arguments is one run, not a duplicate seed
    code, overlap, err = analyze("table", runs["sweep"], runs["sweep"] / "hid2", runs["single"])
    assert code == 0 and err == "" and overlap == whole


def test_csv_carries_every_grouping_key(runs, analyze, tmp_path):
    """Every grouping key is a CSV column, so the file stands on its own; no bookkeeping key is."""
    code, _, _ = analyze("table", runs["sweep"], "--csv", tmp_path / "t.csv")
    assert code == 0
    with open(tmp_path / "t.csv") as file:
        rows = list(csv.DictReader(file))
    header = list(rows[0])
    assert header[0] == "hid" and "epochs" in header and "lr" in header
    assert not {"seed", "out", "corr_full", "eval_chunk"} & set(header)
    assert np.isfinite(float(rows[0]["final_std"]))
