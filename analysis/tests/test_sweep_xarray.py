"""`load_sweep`, format versions 1 and 2, variable attributes, and --version."""

import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import SWEEP_HID, SWEEP_SEEDS, TINY
from dualnet_analysis import InputError, __version__, load_dataset, load_run, load_sweep
from dualnet_analysis.sealed import seal
from helpers import NEW_IN_VERSION_2, read, read_attr, version_1_copy


def test_sweep_is_a_grid_over_hid_and_seed(runs):
    ds = load_sweep(runs["sweep"])
    assert isinstance(ds, xr.Dataset)
    assert ds["corr"].dims == ("hid", "seed", "epoch", "latent", "hid_index")
    assert list(ds["hid"].values) == list(SWEEP_HID) and list(ds["seed"].values) == list(SWEEP_SEEDS)
    assert ds.sizes["epoch"] == TINY["epochs"] + 1 and ds.sizes["hid_index"] == max(SWEEP_HID)
    for hid in SWEEP_HID:
        for seed in SWEEP_SEEDS:
            run_dir = runs["sweep"] / f"hid{hid}/seed{seed}"
            cell = ds.sel(hid=hid, seed=seed)
            np.testing.assert_array_equal(cell["best_corr"], read(run_dir, "metrics/best_corr"))
            np.testing.assert_array_equal(cell["corr"][:, :, :hid], read(run_dir, "metrics/corr"))
            np.testing.assert_array_equal(cell["rho_root"], read(run_dir, "hltm/rho_root"))
    assert ds["corr"].sel(hid=2).isel(hid_index=slice(2, None)).isnull().all()  # hid 2 padded to 4
    assert ds["complete"].all() and (ds["n_rows"] == TINY["epochs"] + 1).all()
    assert ds.attrs["depth"] == TINY["depth"] and ds.attrs["swept_keys"] == "hid"
    with h5py.File(runs["single"] / "metrics.h5", "r", locking=False) as file:
        description = file["metrics/best_corr"].attrs.get("description")
    if description is not None:  # attributes the writer sets are carried over
        description = description.decode() if isinstance(description, bytes) else description
        assert ds["best_corr"].attrs["description"] == description


def test_unequal_lengths_are_padded_and_flagged(runs, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(runs["sweep"], sweep)
    with h5py.File(sweep / "hid2/seed2/metrics.h5", "r+") as file:  # as if killed after 2 evaluations
        for data in file["metrics"].values():
            if data.maxshape[0] is None:
                data.resize(2, axis=0)
    seal(sweep / "hid2/seed2/metrics.h5")
    ds = load_sweep(sweep)
    cell = ds.sel(hid=2, seed=2)
    assert int(cell["n_rows"]) == 2 and not bool(cell["complete"])
    assert cell["best_corr"].isel(epoch=2).isnull().all() and cell["best_corr"].isel(epoch=1).notnull().all()
    assert int(ds.sel(hid=4, seed=2)["n_rows"]) == 3


def test_not_a_grid_gives_a_tidy_frame(runs):
    # no_corr_full is hid 4, seed 3: hid 2 has no seed 3
    df = load_sweep([runs["sweep"], runs["no_corr_full"]])
    assert isinstance(df, pd.DataFrame)
    assert "seed 3" in df.attrs["why_not_dataset"] or "combinations" in df.attrs["why_not_dataset"]
    with pytest.raises(InputError, match="not a full grid"):
        load_sweep([runs["sweep"], runs["no_corr_full"]], kind="dataset")
    n_latent = 2 ** TINY["depth"] - 1
    assert len(df) == 5 * (TINY["epochs"] + 1) * n_latent
    mine = df[(df.hid == 4) & (df.seed == 1)]
    np.testing.assert_array_equal(mine["best_corr"].to_numpy().reshape(-1, n_latent),
                                  read(runs["single"], "metrics/best_corr"))
    level_means = mine.groupby(["epoch", "latent_level"])["best_corr"].mean().unstack().to_numpy()
    np.testing.assert_allclose(level_means, read(runs["single"], "metrics/level_mean_best_corr"), rtol=1e-12)
    # a full grid as a frame, when asked
    assert isinstance(load_sweep(runs["sweep"], kind="dataframe"), pd.DataFrame)


def test_format_versions_1_and_2_read_alike(runs, tmp_path):
    """Real runs are version 2; a version 1 file (old /hltm names, no CF attributes, no
    collapse datasets) reads into the same objects, minus what it lacks."""
    v1 = version_1_copy(runs["single"], tmp_path / "sweep/v1", seed=3)
    new, old = load_run(runs["single"]), load_run(v1)
    assert new.attrs["format_version"] == 2 and old.attrs["format_version"] == 1
    assert list(old.hltm) == list(new.hltm) == ["latent_level", "latent_ref_level", "parent", "polarity", "rho_root"]
    for name in old.hltm:
        np.testing.assert_array_equal(old.hltm[name], new.hltm[name])
    assert set(new.metrics) - set(old.metrics) == set(NEW_IN_VERSION_2)
    for name in old.metrics:
        np.testing.assert_array_equal(old.metrics[name], new.metrics[name])
    np.testing.assert_array_equal(new.metrics["weight_change"], read(runs["single"], "metrics/weight_change"))
    assert old.collapsed is None and old.collapse_epoch is None and new.collapsed is not None

    ds = load_dataset(runs["single"])
    for name in ("latent_level", "corr", "epoch", "output_rank1_gap"):
        group = "hltm" if name == "latent_level" else "metrics"
        for key in ("long_name", "units"):
            assert ds[name].attrs[key] == read_attr(runs["single"], f"{group}/{name}", key)
    assert ds["active_fraction"].dims == ("epoch", "latent", "hid") and ds["output_rank1_gap"].dims == ("epoch",)
    old_ds = load_dataset(v1)
    assert "latent_level" in old_ds.coords and "long_name" not in old_ds["latent_level"].attrs  # renamed on load
    assert "weight_change" not in old_ds
    # the version 2 names are what let the file's two groups merge
    path = runs["single"] / "metrics.h5"
    with xr.open_dataset(path, engine="h5netcdf", group="metrics") as metrics, \
            xr.open_dataset(path, engine="h5netcdf", group="hltm") as hltm:
        merged = xr.merge([metrics, hltm], compat="no_conflicts", join="outer")
        assert merged["latent_level"].dims == ("latent",) and merged["level"].dims == ("level",)
    # a sweep mixing both versions: hid 4 seed 2 as written (version 2), seed 3 the version 1 copy
    shutil.copytree(runs["sweep"] / "hid4/seed2", tmp_path / "sweep/v2")
    mixed = load_sweep(tmp_path / "sweep")
    assert list(mixed["seed"].values) == [2, 3] and "format_version" not in mixed.attrs
    assert mixed["best_corr"].attrs["long_name"] == read_attr(runs["single"], "metrics/best_corr", "long_name")
    np.testing.assert_array_equal(mixed["latent_level"].sel(seed=2), mixed["latent_level"].sel(seed=3))
    gap = mixed["output_rank1_gap"]
    assert gap.sel(seed=3).isnull().all() and gap.sel(seed=2).notnull().all()
    assert np.isnan(mixed["collapsed"].sel(seed=3)) and not np.isnan(mixed["collapsed"].sel(seed=2))


def test_version(analyze_exe):
    code, out, err = analyze_exe("--version")
    assert code == 0 and out.strip() == f"dualnet-analyze {__version__}" and __version__[0].isdigit()
