"""A run as an xarray Dataset with named axes, for interactive analysis (needs the [xarray] extra).

Built from `load_run` rather than opened with h5netcdf so that a killed run shows only its
finished rows, like every other view of it.
"""

from .run import METRICS_DIMS, OPTIONAL_METRICS_DIMS, load_run


def load_dataset(path):
    """Dataset with dims epoch, latent, hid, level, neuron; node properties are latent coordinates."""
    import xarray as xr

    run = load_run(path)
    dims = METRICS_DIMS | OPTIONAL_METRICS_DIMS
    data_vars = {name: (("epoch", *dims[name]), values) for name, values in run.metrics.items() if name != "epoch"}
    hid, depth = run.config["hid"], run.depth
    n_latent = len(run.hltm["level"])
    coords = {
        "epoch": run.metrics["epoch"],
        "latent": range(n_latent),
        "hid": range(hid),
        "level": range(depth),
        "neuron": range(n_latent * hid),
        "node_level": ("latent", run.hltm["level"]),
        "node_ref_level": ("latent", run.hltm["ref_level"]),
        "parent": ("latent", run.hltm["parent"]),
        "polarity": ("latent", run.hltm["polarity"]),
        "rho_root": ("latent", run.hltm["rho_root"]),
        "neuron_node": ("neuron", [n // hid for n in range(n_latent * hid)]),
    }
    attrs = run.attrs | {"path": str(run.path), "complete": int(run.complete)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
