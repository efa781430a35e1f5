"""Files that are not dualnet's are refused with one line on stderr and exit code 2."""

import h5py
import numpy as np
import pytest

from dualnet_analysis.sealed import seal


def assert_refused(result, path):
    code, out, err = result
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert str(path) in err and "Traceback" not in err


def test_text_file(analyze_exe, tmp_path):
    path = tmp_path / "metrics.h5"
    path.write_text("not hdf5\n")
    assert_refused(analyze_exe("summary", path), path)


def test_foreign_hdf5(analyze_exe, tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.arange(3)
    assert_refused(analyze_exe("summary", path), path)


# What each edit breaks, as the refusal names it once the file is resealed.
DAMAGE = {"format_version": "unsupported format_version 99", "drop_dataset": "missing dataset /metrics/best_corr",
          "shape": "/hltm/rho_root has shape (3,)"}


@pytest.mark.parametrize("resealed", [True, False], ids=["resealed", "unresealed"])
@pytest.mark.parametrize("change", list(DAMAGE))
def test_damaged_dualnet_file(runs, analyze, tmp_path, change, resealed):
    """Resealed, the edit itself is refused (the seal says nothing about content); left
    unresealed, the checksum refuses it before HDF5 reads a byte."""
    path = tmp_path / "metrics.h5"
    path.write_bytes((runs["single"] / "metrics.h5").read_bytes())
    with h5py.File(path, "r+") as file:
        if change == "format_version":
            file.attrs["format_version"] = 99
        elif change == "drop_dataset":
            del file["metrics/best_corr"]
        else:
            del file["hltm/rho_root"]
            file["hltm/rho_root"] = np.ones(3)
    if resealed:
        seal(path)
    result = analyze("summary", path)
    assert_refused(result, path)
    reason = result[2]
    if resealed:
        assert DAMAGE[change] in reason and "checksum" not in reason
    else:
        assert "damaged (its checksum does not match)" in reason and DAMAGE[change] not in reason


def test_missing_path_and_empty_sweep(analyze, tmp_path):
    assert_refused(analyze("summary", tmp_path / "nowhere"), tmp_path / "nowhere")
    assert_refused(analyze("table", tmp_path), tmp_path)


def test_unknown_config_key(runs, analyze):
    code, _, err = analyze("table", runs["sweep"], "--by", "no_such_key")
    assert code == 2 and "no_such_key" in err
