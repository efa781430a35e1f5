"""The Python API: a run as arrays and as an xarray Dataset."""

import numpy as np
import xarray as xr

from conftest import PARTIAL_EPOCHS, TINY, finished_rows
from dualnet_analysis import find_runs, group_runs, load_dataset, load_run
from helpers import read


def test_complete_run_has_every_epoch(runs):
    run = load_run(runs["single"])
    assert run.complete and run.n_rows == TINY["epochs"] + 1
    assert run.config["hid"] == 4 and run.config["seed"] == 1
    np.testing.assert_array_equal(run.metrics["best_corr"], read(runs["single"], "metrics/best_corr"))
    assert run.metrics["corr_full"].shape == (run.n_rows, 7, 28)


def test_level_mean_agrees_with_stored_level_summary(runs):
    run = load_run(runs["single"])
    np.testing.assert_allclose(run.level_mean("best_corr"), run.metrics["level_mean_best_corr"], rtol=1e-12)


def test_partial_run_keeps_finished_rows(runs):
    run = load_run(runs["partial"])
    assert not run.complete
    assert 2 <= run.n_rows < PARTIAL_EPOCHS + 1
    assert run.n_rows == finished_rows(runs["partial"] / "metrics.h5")
    np.testing.assert_array_equal(run.metrics["epoch"], np.arange(run.n_rows))


def test_run_without_corr_full(runs):
    assert "corr_full" not in load_run(runs["no_corr_full"]).metrics


def test_sweep_groups_seeds_by_config(runs):
    groups = group_runs(find_runs([runs["sweep"]]), ["hid"])
    assert list(groups) == [(2,), (4,)]
    assert [[run.config["seed"] for run in group] for group in groups.values()] == [[1, 2], [1, 2]]


def test_dataset_has_named_axes(runs):
    ds = load_dataset(runs["single"])
    assert ds["corr_full"].dims == ("epoch", "latent", "neuron")
    assert ds["level_mean_best_corr"].dims == ("epoch", "level")
    np.testing.assert_array_equal(ds["rho_root"], read(runs["single"], "hltm/rho_root"))
    assert ds.sizes["epoch"] == TINY["epochs"] + 1


def test_file_opens_in_xarray_with_dimension_scales(runs):
    """The writer attaches dimension scales, so h5netcdf sees the same named axes."""
    with xr.open_dataset(runs["single"] / "metrics.h5", engine="h5netcdf", group="metrics") as ds:
        assert ds["corr"].dims == ("epoch", "latent", "hid")
        assert ds["best_corr"].dims == ("epoch", "latent")
