"""Sealed metrics files: load_run checks the seal before h5py parses anything, refuses any
damaged byte with one line, still reads unsealed (format version 1) files, and opens files
the way h5py and xarray do by default, so they can be open in the same process."""

import os

import h5py
import pytest

from dualnet_analysis import load_run
from dualnet_analysis.errors import InputError
from dualnet_analysis.sealed import SEAL_BYTES, seal, verify_if_sealed, verify_sealed


def copy_of(runs, tmp_path):
    path = tmp_path / "metrics.h5"
    path.write_bytes((runs["single"] / "metrics.h5").read_bytes())
    return path


def flip(path, offset, mask=0x01):
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def test_a_written_run_is_sealed(runs):
    path = runs["single"] / "metrics.h5"
    head = path.read_bytes()[:SEAL_BYTES]
    assert head.startswith(b"dualnet-sealed 1\nkind metrics\nbytes ")
    verify_sealed(path)
    assert verify_if_sealed(path)
    with pytest.raises(InputError, match="not a checkpoint file"):
        verify_sealed(path, kind="checkpoint")


@pytest.mark.parametrize("where", ["magic", "version", "kind", "length", "hash", "padding", "last padding",
                                   "superblock", "middle", "last byte"])
def test_a_flipped_byte_is_refused(runs, analyze, tmp_path, where):
    path = copy_of(runs, tmp_path)
    size = path.stat().st_size
    head = path.read_bytes()[:SEAL_BYTES]
    offset = {"magic": 0, "version": 15, "kind": head.index(b"kind ") + 6, "length": head.index(b"bytes ") + 6,
              "hash": head.index(b"sha256 ") + 20, "padding": head.index(b"\0"), "last padding": SEAL_BYTES - 1,
              "superblock": SEAL_BYTES + 3, "middle": size // 2, "last byte": size - 1}[where]
    flip(path, offset)
    with pytest.raises(InputError) as err:
        verify_sealed(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    code, out, err_text = analyze("summary", path)
    assert code == 2 and out == "" and len(err_text.strip().splitlines()) == 1 and str(path) in err_text


@pytest.mark.parametrize("cut", [0, 10, SEAL_BYTES - 1, SEAL_BYTES, -1])
def test_truncated_or_extended_is_refused(runs, tmp_path, cut):
    path = copy_of(runs, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data + b"\0")
    with pytest.raises(InputError):
        load_run(path)


def test_zeroed_seal_is_refused(runs, tmp_path):
    path = copy_of(runs, tmp_path)
    data = bytearray(path.read_bytes())
    data[:SEAL_BYTES] = bytes(SEAL_BYTES)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="seal"):
        load_run(path)


def test_edited_then_resealed_is_read(runs, tmp_path):
    """A test that edits a copy with h5py reseals it; the edit is then what load_run sees."""
    path = copy_of(runs, tmp_path)
    with h5py.File(path, "r+") as file:
        for data in file["metrics"].values():
            if data.maxshape[0] is None:
                data.resize(2, axis=0)
    with pytest.raises(InputError, match="checksum|truncated"):
        load_run(path)
    seal(path)
    assert load_run(path).n_rows == 2


def test_unsealed_version_1_file_is_still_read(runs, tmp_path):
    """Format version 1 had no user block: the same HDF5 content without the seal."""
    path = tmp_path / "metrics.h5"
    path.write_bytes((runs["single"] / "metrics.h5").read_bytes()[SEAL_BYTES:])
    with h5py.File(path, "r+") as file:
        file.attrs["format_version"] = 1
    assert not verify_if_sealed(path)
    assert load_run(path).n_rows == load_run(runs["single"]).n_rows
    # a version 2 file must carry its seal
    with h5py.File(path, "r+") as file:
        file.attrs["format_version"] = 2
    with pytest.raises(InputError, match="seal"):
        load_run(path)


def test_fifo_and_directory_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        verify_sealed(fifo)
    with pytest.raises(InputError, match="directory"):
        verify_sealed(tmp_path)


def test_xarray_and_h5py_then_load_run(runs):
    """Readers with default file locking and load_run in one process (they used to clash:
    "file locking flag values don't match")."""
    xr = pytest.importorskip("xarray")
    path = runs["single"] / "metrics.h5"
    with xr.open_dataset(path, engine="h5netcdf", group="metrics") as ds, h5py.File(path, "r") as held:
        run = load_run(path)
        assert run.n_rows == ds.sizes["epoch"] == held["metrics/epoch"].shape[0]
    run = load_run(path)
    with xr.open_dataset(path, engine="h5netcdf", group="metrics") as ds:
        assert ds.sizes["epoch"] == run.n_rows
