"""Find runs under sweep directories and group them into configurations over seeds.

A configuration is a run's values of every *science* key of its config_toml: every key
except the seed and the bookkeeping keys below, which do not change what a run computes.
Grouping by fewer keys (say only those a table shows) would count unrelated runs, e.g. runs
of 2 and of 20 epochs, as seeds of one experiment.
"""

import os
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import InputError
from .run import load_run, metrics_path

# Keys that do not change the science: where a run writes, how it checkpoints, reports,
# reduces and chunks its work. The one list every grouping uses. `epochs` is deliberately
# NOT here: a 2-epoch and a 20-epoch run are different experiments.
BOOKKEEPING_KEYS = frozenset({
    "out", "overwrite", "resume", "run_id", "checkpoint_every", "checkpoint_seconds", "keep_checkpoints",
    "progress_every", "profile_every", "reducer", "eval_chunk", "corr_full",
})
NOT_GROUPING_KEYS = BOOKKEEPING_KEYS | {"seed"}


class _Absent:
    """The value of a key a run's config_toml lacks (older dualnet); a value of its own."""

    def __repr__(self):
        return "—"


ABSENT = _Absent()


def find_runs(paths):
    """Load every run named directly or found below a directory (any depth), in path order.

    A file reached twice (overlapping directories) is loaded once, so it cannot pose as
    a second seed.
    """
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
    seen, unique = set(), []
    for file in files:
        if (real := os.path.realpath(file)) not in seen:
            seen.add(real)
            unique.append(file)
    return [load_run(file) for file in unique]


def grouping_keys(runs):
    """Every key any run's config_toml has, except NOT_GROUPING_KEYS, in config order."""
    keys = {}
    for run in runs:
        keys.update((key, None) for key in run.config if key not in NOT_GROUPING_KEYS)
    return list(keys)


def config_key(run, keys):
    """The run's values for `keys`, refusing a run whose config lacks one of them."""
    missing = [key for key in keys if key not in run.config]
    if missing:
        raise InputError(f"{run.path}: config_toml has no key {', '.join(missing)}")
    return tuple(run.config[key] for key in keys)


def group_runs(runs, keys=None):
    """Configurations in sorted order, each with its runs sorted by seed.

    keys=None (recommended) groups by every science key (`grouping_keys`); explicit keys
    group by exactly those, so runs differing in anything else land in one group.
    """
    if keys is None:
        return configurations(runs).groups
    groups = {}
    for run in runs:
        groups.setdefault(config_key(run, keys), []).append(run)
    return _sorted_groups(groups)


def _sorted_groups(groups):
    return {key: sorted(groups[key], key=lambda run: run.config["seed"])
            for key in sorted(groups, key=sort_key)}


def sort_key(values):
    """Numbers sort numerically, everything else as text, so mixed keys still order."""
    return tuple((0, v, "") if isinstance(v, int | float) else (1, 0, value_text(v)) for v in values)


def value_text(value):
    """A config value as the TOML-ish text a reader expects: true, 0.8, ref_nce, — (absent)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if value is ABSENT else str(value)


def label(keys, values):
    """Human-readable name of a configuration, e.g. 'hid=4, loss=ref_nce'."""
    return ", ".join(f"{k}={value_text(v)}" for k, v in zip(keys, values))


@dataclass(frozen=True)
class Sweep:
    """Runs grouped by every science key; `groups` maps the values of `keys` to runs by seed."""

    keys: tuple
    groups: dict

    def value(self, values, key):
        return values[self.keys.index(key)]

    def project(self, values, keys):
        """The group's values of `keys` (a subset of self.keys, in that order)."""
        return tuple(self.value(values, key) for key in keys)

    @cached_property
    def varying(self):
        """Keys whose value differs between configurations, in config order."""
        return [key for i, key in enumerate(self.keys) if len({_hashable(v[i]) for v in self.groups}) > 1]

    @cached_property
    def constant(self):
        """{key: value} of the keys every run shares."""
        first = next(iter(self.groups))
        return {key: first[i] for i, key in enumerate(self.keys) if key not in self.varying}

    def display_keys(self, by=None):
        """(columns to show, keys added to them) for a table or figure names.

        Default: the varying keys. With `by`, those keys in that order, plus (added) the
        fewest further varying keys needed so that no two configurations look alike.
        """
        if by is None:
            return list(self.varying), []
        for key in by:
            if key in NOT_GROUPING_KEYS:
                what = "the seed" if key == "seed" else "a bookkeeping key"
                raise InputError(f"--by {key}: {key} is {what}, which never defines a configuration")
            if key not in self.keys:
                raise InputError(f"--by {key}: no run's config_toml has this key")
        shown, added = list(dict.fromkeys(by)), []
        while self._clashes(shown) > 0:
            candidates = [key for key in self.varying if key not in shown]
            best = min(candidates, key=lambda key: self._clashes([*shown, key]))  # config order on ties
            shown.append(best)
            added.append(best)
        return shown, added

    def _clashes(self, keys):
        """How many configurations share their displayed values with another one."""
        counts = Counter(tuple(map(_hashable, self.project(values, keys))) for values in self.groups)
        return sum(n for n in counts.values() if n > 1)

    def ordered(self, shown):
        """Configurations sorted by the shown keys first, then by the rest."""
        rest = [key for key in self.keys if key not in shown]
        return sorted(self.groups, key=lambda v: (sort_key(self.project(v, shown)), sort_key(self.project(v, rest))))


def _hashable(value):
    return value if not isinstance(value, list | dict) else repr(value)


def configurations(runs):
    """Group runs by every science key; a key a run's config lacks gets the value ABSENT."""
    keys = tuple(grouping_keys(runs))
    groups = {}
    for run in runs:
        groups.setdefault(tuple(_hashable(run.config.get(key, ABSENT)) for key in keys), []).append(run)
    return Sweep(keys=keys, groups=_sorted_groups(groups))


def drop_unfinished(runs):
    """(complete runs, one note per dropped run) for --complete-only."""
    kept = [run for run in runs if run.complete]
    notes = [f"dropped unfinished run {run.path} ({run.n_rows} of {run.config['epochs'] + 1} evaluations; "
             "--complete-only)" for run in runs if not run.complete]
    return kept, notes


def drop_collapsed(runs):
    """(runs not known to be collapsed, one note per dropped run) for --exclude-collapsed.

    Runs whose files predate the collapse datasets are kept: their collapse is unknown and
    is never guessed.
    """
    kept = [run for run in runs if not run.collapsed]
    notes = [f"dropped collapsed run {run.path} (collapsed since epoch {run.collapse_epoch}; --exclude-collapsed)"
             for run in runs if run.collapsed]
    return kept, notes


def problems(sweep, shown, allow_duplicates=False):
    """(errors, warnings): one line each about what would make seed statistics mislead.

    Errors: a seed twice in one configuration (a copied or re-run run would count twice),
    unless allow_duplicates. Warnings: unfinished runs, and runs of one configuration with
    different numbers of finished evaluations (their 'final' values are from different epochs).
    """
    errors, warnings = [], []
    for values in sweep.ordered(shown):
        runs = sweep.groups[values]
        name = label(shown, sweep.project(values, shown)) or "the configuration"
        seeds = Counter(run.config["seed"] for run in runs)
        for seed, count in seeds.items():
            if count < 2:
                continue
            paths = ", ".join(str(run.path) for run in runs if run.config["seed"] == seed)
            line = f"{name}: seed {seed} appears in {count} runs ({paths})"
            if allow_duplicates:
                warnings.append(f"{line}; counted as {count} samples (--allow-duplicates)")
            else:
                errors.append(f"{line}; statistics over seeds would count it {count} times "
                              "(remove the copies or pass --allow-duplicates)")
        for run in runs:
            if not run.complete:
                warnings.append(f"{name}: {run.path} is unfinished ({run.n_rows} of {run.config['epochs'] + 1} "
                                f"evaluations), its 'final' is epoch {run.n_rows - 1} (--complete-only drops it)")
        lengths = sorted({run.n_rows for run in runs})
        if len(lengths) > 1:
            warnings.append(f"{name}: its runs have different numbers of finished evaluations "
                            f"({', '.join(map(str, lengths))}), so 'final' mixes epochs "
                            f"{', '.join(str(n - 1) for n in lengths)}")
    return errors, warnings
