"""Post-hoc analysis of dualnet runs.

The Python API the `dualnet-analyze` commands are built on:
- `load_run(path)`: one run as numpy arrays (finished rows only), checked against the format;
- `load_dataset(path)`: the same as an xarray Dataset with named axes (needs the [xarray] extra);
- `load_sweep(paths)`: many runs as one xarray Dataset with the swept config keys and seed as
  dimensions, or as a tidy pandas DataFrame when they do not form a grid;
- `find_runs(paths)`, `configurations(runs)`, `group_runs(runs)`: sweeps as configurations
  (every science key) over seeds.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dualnet-analysis")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

from .dataset import load_dataset, load_sweep  # noqa: E402
from .errors import InputError  # noqa: E402
from .run import Run, load_run  # noqa: E402
from .sweep import BOOKKEEPING_KEYS, configurations, find_runs, group_runs  # noqa: E402

__all__ = ["BOOKKEEPING_KEYS", "InputError", "Run", "__version__", "configurations", "find_runs", "group_runs",
           "load_dataset", "load_run", "load_sweep"]
