"""`claims`: the paper's six claims on a tiny real sweep and real covop reports, every number
checked against the files read directly; the collapse handling and the verdict rules on
hand-made runs whose answer is known."""

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import dualnet_bin, train_all
from dualnet_analysis import claims as claims_module
from dualnet_analysis.run import Run
from dualnet_analysis.sweep import configurations
from helpers import read

HIDS, DELTAS, SEEDS = (2, 4), (0.6, 0.9), (1, 2, 3)
# A bias-free, unnormalised simp training on the depth-3 test tree (the theorem's setting),
# then simp alone at two batches (the slope) and all three losses at the largest.
COVOP_TRAIN = {"depth": 3, "hid": 4, "bias": "false", "normalize_output": "false", "loss": "simp", "lr": 0.03,
               "batch": 64, "samples_per_pass": 1280, "epochs": 1}
SMALL_BATCHES, BIG_BATCH, TAUS = (1024, 4096), 8192, (0.0001, 0.01, 1.0)
COVOP_SEEDS = (1, 2)


@pytest.fixture(scope="module")
def claim_runs(tmp_path_factory):
    """A hid x delta_lower x 3-seed sweep of the test tree, and covop reports of two seeds."""
    root = tmp_path_factory.mktemp("claims")
    train_all(root / "sweep", {f"hid{h}/dl{d}/seed{s}": {"hid": h, "delta_lower": d, "seed": s}
                               for h in HIDS for d in DELTAS for s in SEEDS})
    with ThreadPoolExecutor(len(COVOP_SEEDS)) as pool:
        list(pool.map(lambda seed: covop_seed(root / "covop" / f"seed{seed}", seed), COVOP_SEEDS))
    return root


def covop_seed(d, seed):
    def run(*args):
        proc = subprocess.run([str(dualnet_bin()), *map(str, args)], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"dualnet {' '.join(map(str, args))} failed:\n{proc.stdout}{proc.stderr}", pytrace=False)

    run("train", *(f"{k}={v}" for k, v in COVOP_TRAIN.items()), f"seed={seed}", f"out={d / 'train'}")
    for stream, batch in enumerate(SMALL_BATCHES, start=1):
        run("covop", d / "train", f"batch={batch}", "losses=simp", f"stream={stream}", f"file={d / f'b{batch}.h5'}")
    run("covop", d / "train", f"batch={BIG_BATCH}", "losses=simp,infonce,triplet",
        f"taus={','.join(map(str, TAUS))}", f"file={d / f'b{BIG_BATCH}.h5'}")


def summary_rows(out):
    """{claim number: [cells]} of the summary table."""
    rows = {}
    for line in out.split("\n## ")[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if line.startswith("| ") and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def section(out, number):
    return next(part for part in out.split("\n## ") if part.startswith(f"{number}. "))


def pm(values, digits=4, signed=False, scale=1.0, unit=""):
    """The independent spelling of mean ± sample std."""
    values = np.asarray(values) * scale
    mean = f"{values.mean():+.{digits}f}" if signed else f"{values.mean():.{digits}f}"
    return f"{mean} ± {values.std(ddof=1):.{digits}f}{unit}"


def run_dir(root, hid, delta, seed):
    return root / "sweep" / f"hid{hid}" / f"dl{delta}" / f"seed{seed}"


def collapsed(path):
    gap, change = read(path, "metrics/output_rank1_gap"), read(path, "metrics/weight_change")
    return len(gap) > 1 and (gap[-1] <= 1e-6 or bool(np.all(change[-1] == 0)))


def test_claims_numbers_match_the_files(claim_runs, analyze):
    code, out, err = analyze("claims", claim_runs / "sweep", "--covop", claim_runs / "covop")
    assert code == 0 and err == "", err
    rows = summary_rows(out)
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]
    assert all(rows[n][4].replace("*", "").split("<br>")[0] in ("yes", "no", "partly") for n in rows)

    # Claim 1: final - init level-mean best_corr, averaged over levels, per configuration (all runs)
    gains = {}
    for h in HIDS:
        for d in DELTAS:
            per_seed = [np.mean(np.diff(read(run_dir(claim_runs, h, d, s), "metrics/level_mean_best_corr")[[0, -1]],
                                        axis=0)) for s in SEEDS]
            gains[(h, d)] = per_seed
            assert f"| delta_lower={d}, hid={h} | 3 |" in section(out, 1)
            assert pm(per_seed, signed=True) in section(out, 1)
    assert rows[1][4].startswith("**yes**" if all(np.mean(g) > 0 for g in gains.values()) else "**no**")
    assert f"gain > 0 in {sum(np.mean(g) > 0 for g in gains.values())}/4 configurations" in rows[1][2]

    # Claim 2: Spearman rho of (level, final level mean) per seed, by the no-ties formula
    for h in HIDS:
        for d in DELTAS:
            rhos = []
            for s in SEEDS:
                final = read(run_dir(claim_runs, h, d, s), "metrics/level_mean_best_corr")[-1]
                rank = np.argsort(np.argsort(final))
                n = len(final)
                rhos.append(1 - 6 * np.sum((rank - np.arange(n)) ** 2) / (n * (n * n - 1)))
            assert f"| delta_lower={d}, hid={h} | 3 | {pm(rhos, digits=2)} |" in section(out, 2)

    # Claim 3 (hid) and 4 (delta_lower): seed means of the final level average, collapsed runs left out
    finals = {(h, d): [np.mean(read(run_dir(claim_runs, h, d, s), "metrics/level_mean_best_corr")[-1])
                       for s in SEEDS if not collapsed(run_dir(claim_runs, h, d, s))] for h in HIDS for d in DELTAS}
    for d in DELTAS:
        chain = " → ".join(f"{h}: {pm(finals[(h, d)])}" for h in HIDS if len(finals[(h, d)]) > 1)
        if all(len(finals[(h, d)]) > 1 for h in HIDS):
            assert f"delta_lower={d}: {chain}" in rows[3][2]
    def rises(low, high):  # a pair with every seed of one end collapsed cannot be compared
        return [np.mean(finals[b]) > np.mean(finals[a]) for a, b in zip(low, high) if finals[a] and finals[b]]

    for n, steps in ((3, rises([(2, d) for d in DELTAS], [(4, d) for d in DELTAS])),
                     (4, rises([(h, 0.6) for h in HIDS], [(h, 0.9) for h in HIDS]))):
        assert steps and rows[n][4].startswith("**yes**" if all(steps) else "**no**"), rows[n]

    # Claim 5: max over levels of simp's error at the largest batch, and the slope per seed
    worst, slopes = [], []
    for seed in COVOP_SEEDS:
        d = claim_runs / "covop" / f"seed{seed}"
        errors = {}
        for batch in (*SMALL_BATCHES, BIG_BATCH):
            with h5py.File(d / f"b{batch}.h5", "r") as file:
                errors[batch] = file["simp/rel_error"][()]
                assert file.attrs["batch"] == batch
        worst.append(errors[BIG_BATCH].max())
        rms = [np.sqrt(np.mean(errors[b] ** 2)) for b in errors]
        slopes.append(np.polyfit(np.log(list(errors)), np.log(rms), 1)[0])
    assert f"batch 2^13: max over levels {pm(worst, digits=2, scale=100, unit=' %')} (2 seeds)" in rows[5][2]
    assert f"slope of log error vs log batch: {pm(slopes, digits=2)}" in rows[5][2]
    ok = max(worst) < 0.02 and -0.65 <= np.mean(slopes) <= -0.35
    assert rows[5][4] == ("**yes**" if ok else "**no**")

    # Claim 6: level-mean residue per tau; triplet is infonce here (one negative, margin 0)
    residue = []
    for seed in COVOP_SEEDS:
        with h5py.File(claim_runs / "covop" / f"seed{seed}" / f"b{BIG_BATCH}.h5", "r") as file:
            np.testing.assert_array_equal(file["infonce/tau"][()], TAUS)
            residue.append(file["infonce/rel_residue"][()].mean(axis=1))
            np.testing.assert_array_equal(file["triplet/rel_residue"][()], file["infonce/rel_residue"][()])
    residue = np.array(residue)
    cells = ", ".join(f"τ={t:g}: {pm(residue[:, i], digits=1, scale=100, unit=' %')}" for i, t in enumerate(TAUS))
    assert f"infonce (batch 2^13): {cells}" in rows[6][2]
    assert "triplet: identical to infonce" in rows[6][2]


def test_covop_trainings_below_the_sweep_are_not_sweep_runs(claim_runs, analyze):
    """claims ROOT --covop ROOT/covop: the covop trainings under ROOT are not configurations."""
    code, out, err = analyze("claims", claim_runs, "--covop", claim_runs / "covop")
    assert code == 0, err
    assert f": {len(HIDS) * len(DELTAS) * len(SEEDS)} runs, 4 configurations" in out


def test_collapsed_runs_are_named_and_counted(collapse_runs, analyze):
    code, out, err = analyze("claims", collapse_runs["root"])
    assert code == 0 and err == ""
    rows = summary_rows(out)
    assert "2 runs (incl. 1 collapsed)" in rows[1][2]
    assert "- seed 2: collapsed since epoch 1" in out  # one configuration: no key to name it by
    assert rows[3][4] == rows[4][4] == "n/a" and "takes one value in the sweep" in rows[3][2]
    assert rows[5][4] == rows[6][4] == "n/a" and "no --covop directory given" in rows[5][2]


def test_bad_covop_directories_are_refused(claim_runs, analyze, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = analyze("claims", claim_runs / "sweep", "--covop", empty)
    assert code == 2 and out == "" and err.strip().splitlines() == [
        f"dualnet-analyze: error: {empty}: no dualnet covop report (*.h5) below this directory"]

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    data = bytearray((claim_runs / "covop" / "seed1" / f"b{BIG_BATCH}.h5").read_bytes())
    data[len(data) // 2] ^= 0x40
    (damaged / "r.h5").write_bytes(bytes(data))
    code, out, err = analyze("claims", claim_runs / "sweep", "--covop", damaged)
    assert code == 2 and out == "" and "damaged" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- the rules, on hand-made runs

def fake_run(hid, seed, final, collapse=False, depth=3):
    """A run whose final level means are all `final` (init 0.5); collapsed if asked."""
    latents = 2**depth - 1
    gap = np.array([0.5, 0.0 if collapse else 0.3])
    return Run(path=Path(f"/fake/hid{hid}/seed{seed}/metrics.h5"), attrs={},
               config={"depth": depth, "num_children": 2, "hid": hid, "delta_lower": 0.8, "epochs": 1, "seed": seed},
               hltm={"latent_level": np.repeat(np.arange(depth), 2 ** np.arange(depth))},
               metrics={"epoch": np.arange(2), "level_mean_best_corr": np.array([[0.5] * depth, [final] * depth]),
                        "output_rank1_gap": gap, "weight_change": np.full((2, latents), 0.1)})


def test_monotone_rule_partly_and_the_collapse_choice():
    """Without the collapsed hid=5 seed the seed means rise 2 -> 5 -> 10: yes. With it, hid=5
    falls below hid=2 while hid=10 still beats hid=2: partly (the ends rise, a step falls)."""
    runs = [fake_run(2, s, 0.70 + 0.01 * s) for s in (1, 2, 3)]
    runs += [fake_run(5, s, 0.79 + 0.01 * s) for s in (1, 2)] + [fake_run(5, 3, 0.10, collapse=True)]
    runs += [fake_run(10, s, 0.85 + 0.01 * s) for s in (1, 2, 3)]
    claim = claims_module.claim_monotone(configurations(runs), "hid", 3, "hid helps")
    assert claim.verdict == "**yes**<br>(but partly with collapsed runs)"
    assert "2: 0.7200 ± 0.0100 → 5: 0.8050 ± 0.0071 → 10: 0.8700 ± 0.0100" in claim.evidence
    assert "8 runs (1 collapsed left out)" in claim.evidence
    # claim 1 keeps every run: the collapsed seed's gain (0.10 - 0.5) counts
    claim = claims_module.claim_training(configurations(runs), ["hid"])
    assert "smallest: +0.0700 ± 0.4071 (hid=5)" in claim.evidence and "9 runs (incl. 1 collapsed)" in claim.evidence


def test_spearman_and_the_residue_rule():
    assert claims_module.spearman([0, 1, 2, 3], [1, 2, 2, 5]) == pytest.approx(np.corrcoef([1, 2, 3, 4],
                                                                                          [1, 2.5, 2.5, 4])[0, 1])
    assert np.isnan(claims_module.spearman([0, 1, 2], [1, 1, 1]))

    class Report:
        simp = {"rel_error": np.array([0.01, 0.01])}

    falls = claims_module._falls_with_tau
    assert falls(np.array([1.5, 0.6, 0.05, 0.012, 0.011]), Report)
    assert falls(np.array([1.5, 1.6, 0.05, 0.012, 0.015]), Report)  # saturated and within-noise rises pass
    assert not falls(np.array([1.5, 0.6, 0.05, 0.08, 0.011]), Report)  # a rise of 3 % above the 1 % floor
    assert not falls(np.array([0.02, 0.03]), Report)  # no growth from the largest to the smallest tau
