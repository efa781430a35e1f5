"""`plot`: the figures exist, are PNGs and show something."""

from pathlib import Path

from helpers import png_pixels


def assert_drawn(path):
    pixels = png_pixels(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 0.05, f"{path} looks blank"


def test_plot_sweep_and_runs(runs, analyze_exe, tmp_path):
    out = tmp_path / "figs"
    code, stdout, stderr = analyze_exe("plot", runs["sweep"], runs["no_corr_full"], runs["partial"], "--out", out,
                                       "--by", "hid")
    assert code == 0, stderr
    written = sorted(Path(line) for line in stdout.splitlines())
    names = {p.name for p in written}
    for hid in (2, 4):
        for kind in ("best_corr", "covop_norm", "best_corr_vs_rho", "covop_alignment", "covop_spectrum"):
            assert f"{kind}_hid={hid}.png" in names
    heat_maps = [n for n in names if n.startswith("corr_full_")]
    assert len(heat_maps) == 5, heat_maps  # 4 sweep runs + the partial run; no_corr_full is skipped
    assert not any("no_corr_full" in n for n in heat_maps)
    assert "no corr_full" in stderr and "no_corr_full" in stderr
    assert set(out.iterdir()) == set(written)
    for path in written:
        assert_drawn(path)
