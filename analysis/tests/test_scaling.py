"""`scaling`: speed-up and efficiency are recomputed from throughput, not copied."""

import csv

import pytest

from helpers import png_pixels

HEADER = "kind,ranks,nodes,global_batch,per_rank_batch,samples_per_s,step_time_s,compute_s,allreduce_s,io_s,efficiency"
# The efficiency column is deliberately wrong (0.5): the command must not trust it.
ROWS = """strong,1,1,128,128,1000,0.128,0.12,0.0,0.008,0.5
strong,2,1,128,64,1800,0.071,0.06,0.01,0.001,0.5
strong,4,1,128,32,3000,0.043,0.03,0.012,0.001,0.5
weak,1,1,128,128,1000,0.128,0.12,0.0,0.008,0.5
weak,2,1,256,128,1900,0.135,0.12,0.014,0.001,0.5
weak,2,1,256,128,2100,0.122,0.11,0.011,0.001,0.5
weak,4,2,512,128,3600,0.142,0.12,0.02,0.002,0.5
"""
EXPECTED = {  # (kind, ranks): (speed-up, efficiency); the two weak 2-rank repeats average to 2000
    ("strong", 1): (1.0, 1.0), ("strong", 2): (1.8, 0.9), ("strong", 4): (3.0, 0.75),
    ("weak", 1): (1.0, 1.0), ("weak", 2): (2.0, 1.0), ("weak", 4): (3.6, 0.9),
}


def test_scaling_report(analyze, tmp_path):
    results = tmp_path / "results.csv"
    results.write_text(HEADER + "\n" + ROWS)
    code, out, _ = analyze("scaling", results, "--out", tmp_path / "out")
    assert code == 0
    with open(tmp_path / "out" / "scaling.csv") as file:
        rows = list(csv.DictReader(file))
    got = {(r["kind"], int(r["ranks"])): (float(r["speedup"]), float(r["efficiency"])) for r in rows}
    assert got.keys() == EXPECTED.keys()
    for key, (speedup, efficiency) in EXPECTED.items():
        assert got[key] == pytest.approx((speedup, efficiency), rel=1e-12), key
    assert "| weak | 4 | 2 | 512 | 128 | 1 | 3600 | 3.6 | 4 | 0.9 | 0.5 |" in out
    for name in ("speedup", "efficiency", "time_breakdown"):
        assert png_pixels(tmp_path / "out" / f"scaling_{name}.png").std() > 0.05


def test_scaling_refuses_other_csv(analyze, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    code, _, err = analyze("scaling", path, "--out", tmp_path / "out")
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1


def test_scaling_keeps_node_counts_apart(analyze, tmp_path):
    """2 ranks on one node and 2 ranks on two nodes are two points, not repeats of one."""
    results = tmp_path / "results.csv"
    results.write_text(HEADER + "\n" + """strong,1,1,128,128,1000,0.128,0.12,0.0,0.008,1
strong,2,1,128,64,1500,0.085,0.06,0.02,0.001,1
strong,2,2,128,64,1800,0.071,0.06,0.01,0.001,1
strong,4,2,128,32,3000,0.043,0.03,0.012,0.001,1
""")
    code, out, _ = analyze("scaling", results, "--out", tmp_path / "out")
    assert code == 0
    with open(tmp_path / "out" / "scaling.csv") as file:
        rows = list(csv.DictReader(file))
    got = {(int(r["ranks"]), int(r["nodes"])): (int(r["repeats"]), float(r["speedup"])) for r in rows}
    assert got == {(1, 1): (1, 1.0), (2, 1): (1, 1.5), (2, 2): (1, 1.8), (4, 2): (1, 3.0)}
    for name in ("speedup", "efficiency", "time_breakdown"):
        assert png_pixels(tmp_path / "out" / f"scaling_{name}.png").std() > 0.05
