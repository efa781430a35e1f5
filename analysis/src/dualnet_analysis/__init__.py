"""Post-hoc analysis of dualnet runs.

The Python API the `dualnet-analyze` commands are built on:
- `load_run(path)`: one run as numpy arrays (finished rows only), checked against the format;
- `load_dataset(path)`: the same as an xarray Dataset with named axes (needs the [xarray] extra);
- `find_runs(paths)`, `group_runs(runs, keys)`: sweeps as configurations over seeds.
"""

from .dataset import load_dataset
from .errors import InputError
from .run import Run, load_run
from .sweep import find_runs, group_runs

__all__ = ["InputError", "Run", "find_runs", "group_runs", "load_dataset", "load_run"]
