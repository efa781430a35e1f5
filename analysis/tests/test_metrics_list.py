"""The /metrics dataset list has one source, dualnet's (metrics_datasets() in
src/io/metrics_file.cpp). The analysis's METRICS_DIMS and OPTIONAL_METRICS_DIMS and the table
in docs/metrics-format.md are checked here against a file the binary wrote, so that neither
drifts (both once lacked covop_eigenvalues and covop_alignment).
"""

import re

import h5py

from conftest import REPO
from dualnet_analysis.run import METRICS_DIMS, OPTIONAL_METRICS_DIMS, metrics_path


def written_metrics_dims(path):
    """Each /metrics dataset on the epoch axis, with the names of its other axes, read from the
    file's dimension scales."""
    def axis(ds, a):
        return ds.dims[a][0].name.rsplit("/", 1)[-1]

    with h5py.File(path, "r") as file:
        return {name: tuple(axis(ds, a) for a in range(1, ds.ndim))
                for name, ds in file["metrics"].items()
                if name != "epoch" and ds.ndim >= 1 and len(ds.dims[0]) and axis(ds, 0) == "epoch"}


def documented_metrics_shapes():
    """{name: "[E, latent, hid]"} from the tables of docs/metrics-format.md's /metrics section."""
    doc = (REPO / "docs" / "metrics-format.md").read_text()
    section = doc.split("## Group `/metrics`", 1)[1].split("\n## ", 1)[0]
    shapes = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].startswith("`") and cells[2].startswith("[E"):
            shapes |= {name: cells[2] for name in re.findall(r"`(\w+)`", cells[1])}
    shapes.pop("epoch", None)  # the axis itself
    return shapes


def test_analysis_knows_every_dataset_dualnet_writes(runs):
    # The single run has corr_full (auto on a tiny tree): every dataset dualnet has is in it.
    written = written_metrics_dims(metrics_path(runs["single"]))
    assert written == METRICS_DIMS | OPTIONAL_METRICS_DIMS


def test_format_doc_lists_every_dataset_dualnet_writes(runs):
    written = written_metrics_dims(metrics_path(runs["single"]))
    assert documented_metrics_shapes() == {name: "[" + ", ".join(("E", *dims)) + "]" for name, dims in written.items()}
