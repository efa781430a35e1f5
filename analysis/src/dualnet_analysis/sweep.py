"""Find runs under sweep directories and group them into configurations over seeds.

A configuration is the tuple of config_toml values for the keys the user names with --by;
runs that share it differ only in what the user did not name, normally the seed.
"""

from pathlib import Path

from .errors import InputError
from .run import load_run, metrics_path


def find_runs(paths):
    """Load every run named directly or found below a directory (any depth), in path order."""
    files = []
    for path in map(Path, paths):
        direct = metrics_path(path)
        if direct.is_file() or not path.is_dir():
            files.append(direct)
        else:
            found = sorted(path.glob("**/metrics.h5"))
            if not found:
                raise InputError(f"{path}: no metrics.h5 below this directory")
            files.extend(found)
    return [load_run(file) for file in files]


def config_key(run, keys):
    """The run's values for `keys`, refusing a run whose config lacks one of them."""
    missing = [key for key in keys if key not in run.config]
    if missing:
        raise InputError(f"{run.path}: config_toml has no key {', '.join(missing)}")
    return tuple(run.config[key] for key in keys)


def group_runs(runs, keys):
    """Configurations in sorted order, each with its runs sorted by seed."""
    groups = {}
    for run in runs:
        groups.setdefault(config_key(run, keys), []).append(run)
    return {
        key: sorted(groups[key], key=lambda run: run.config["seed"])
        for key in sorted(groups, key=lambda key: tuple(_sortable(v) for v in key))
    }


def _sortable(value):
    """Numbers sort numerically, everything else as text, so mixed keys still order."""
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def label(keys, values):
    """Human-readable name of a configuration, e.g. 'hid=4, loss=ref_nce'."""
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values))


def slug(text):
    """A file-name-safe form of a label."""
    return "".join(c if c.isalnum() or c in "=.-" else "_" for c in text.replace(", ", "__"))
