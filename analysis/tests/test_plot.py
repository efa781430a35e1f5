"""`plot` and `compare`: figures exist in every format asked for, show something, keep their
text as text, and have shell- and LaTeX-friendly names."""

import re
from pathlib import Path

import numpy as np
import pytest

from conftest import GRID_LOSSES
from dualnet_analysis.plots import _seed_band, file_stem
from dualnet_analysis.sweep import ABSENT
from helpers import pdf_text, png_pixels

NAME = re.compile(r"^[a-z0-9-_.]+$")
KINDS = ("corr", "covop-norm", "corr-vs-rho", "covop-alignment", "covop-spectrum")


def assert_drawn(path):
    pixels = png_pixels(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 0.05, f"{path} looks blank"


def written(stdout, out):
    paths = sorted(Path(line) for line in stdout.splitlines())
    assert set(out.iterdir()) == set(paths)
    for path in paths:
        assert NAME.match(path.name), path.name
    return paths


def test_plot_groups_by_every_science_key(runs, analyze_exe, tmp_path):
    """The partial run (other epochs and samples_per_pass) is its own configuration, so
    --by hid gets the key that tells hid=4's two configurations apart."""
    out = tmp_path / "figs"
    code, stdout, stderr = analyze_exe("plot", runs["sweep"] / "hid4", runs["no_corr_full"], runs["partial"],
                                       "--out", out, "--by", "hid", "--dpi", "40")
    assert code == 0, stderr
    names = {p.name for p in written(stdout, out)}
    assert "also showing samples_per_pass" in stderr
    for config in ("hid-4_samples-per-pass-512", "hid-4_samples-per-pass-32768"):
        for kind in KINDS:
            assert f"{config}_{kind}.png" in names
    heat_maps = sorted(n for n in names if n.endswith("_corr-full.png"))
    # 2 sweep runs + the partial run; no_corr_full (seed 3) is skipped with a note
    assert heat_maps == ["hid-4_samples-per-pass-32768_seed-4_corr-full.png",
                         "hid-4_samples-per-pass-512_seed-1_corr-full.png",
                         "hid-4_samples-per-pass-512_seed-2_corr-full.png"]
    assert "no corr_full" in stderr and "no_corr_full" in stderr
    assert "unfinished" in stderr and str(runs["partial"]) in stderr
    for name in names:
        assert_drawn(out / name)


def test_formats_keep_text_as_text(runs, analyze, tmp_path):
    out = tmp_path / "figs"
    code, stdout, err = analyze("plot", runs["single"], "--out", out, "--format", "svg,pdf")
    assert code == 0, err
    paths = written(stdout, out)
    assert {p.suffix for p in paths} == {".pdf", ".svg"}
    assert len(paths) == 2 * (len(KINDS) + 1)
    stem = out / "covop-alignment"  # one configuration: nothing varies, so no key in the name
    svg = stem.with_suffix(".svg").read_text()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in ("epoch (0 = initialisation)", "alignment at initialisation", "alignment at the last epoch"):
        assert label in texts
    assert 'id="DejaVuSans-' not in svg  # glyphs drawn as paths would be defined like this
    pdf = stem.with_suffix(".pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/CIDFontType2" in pdf and b"/Type3" not in pdf
    shown = pdf_text(stem.with_suffix(".pdf"))
    for label in ("epoch (0 = initialisation)", "alignment at initialisation",
                  "every node (above the diagonal: amplified)"):
        assert label in shown


def test_compare_has_one_panel_per_loss(runs, grid, analyze, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, err = analyze("compare", runs["sweep"], grid, "--out", out, "--format", "png,pdf,svg")
    assert code == 0, err
    names = {p.name for p in written(stdout, out)}
    assert names == {f"compare-vs-{key}.{fmt}" for key in ("hid", "delta-lower") for fmt in ("png", "pdf", "svg")}
    for key in ("hid", "delta-lower"):
        svg = (out / f"compare-vs-{key}.svg").read_text()
        assert len(re.findall(r'<g id="axes_\d+"', svg)) == len(GRID_LOSSES)
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
        shown = pdf_text(out / f"compare-vs-{key}.pdf")
        for loss in GRID_LOSSES:
            assert f"loss = {loss}" in texts and f"loss = {loss}" in shown
        assert_drawn(out / f"compare-vs-{key}.png")
        assert png_pixels(out / f"compare-vs-{key}.png").shape[1] > 1800  # 7.2 inches at the default 300 dpi
    # against hid, the other delta_lower is a series of its own, not averaged in
    assert "delta_lower=0.6" in re.findall(r"<text[^>]*>([^<]*)</text>", (out / "compare-vs-hid.svg").read_text())


def test_compare_refuses_when_nothing_varies(runs, analyze, tmp_path):
    code, out, err = analyze("compare", runs["sweep"] / "hid2", "--out", tmp_path / "cmp")
    assert code == 2 and out == "" and "nothing to compare" in err


def test_file_stem():
    assert file_stem([("hid", 10), ("delta_lower", 0.8), ("loss", "ref_nce")], "corr") == \
        "hid-10_delta-lower-0p8_loss-ref-nce_corr"
    assert file_stem([("lr", 1e-05), ("margin", -0.5), ("bias", True), ("temp", ABSENT)], "corr-full") == \
        "lr-1em05_margin-m0p5_bias-true_temp-absent_corr-full"
    assert file_stem([("out", "/a b/C=d__e")], "x") == "out-a-b-c-d-e_x"


def test_log_band_is_geometric():
    """Seeds at 1e-3 and 1e-1: centre 1e-2, band 10^(-2 ± sqrt 2), never below zero."""
    curves = [np.array([[1e-3]]), np.array([[1e-1]])]
    centre, low, high = (a[0, 0] for a in _seed_band(curves, log=True))
    assert centre == pytest.approx(1e-2)
    assert (low, high) == pytest.approx((10 ** (-2 - np.sqrt(2)), 10 ** (-2 + np.sqrt(2))))
    linear_low = _seed_band(curves)[1][0, 0]
    assert linear_low < 0 < low
