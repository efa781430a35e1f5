"""The `dualnet-analyze` command: summary, table, plot, scaling.

Input problems (InputError) end the command with one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

import argparse
import sys
from pathlib import Path

from . import plots, scaling, table
from .errors import InputError
from .summary import summary
from .sweep import find_runs, group_runs

DEFAULT_BY = "hid,delta_lower,loss"


def _keys(text):
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise argparse.ArgumentTypeError("name at least one config key")
    return keys


def _parser():
    parser = argparse.ArgumentParser(prog="dualnet-analyze", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("summary", help="per-level correlation, loss and operator norms of runs (markdown)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory or its metrics.h5")

    p = commands.add_parser("table", help="mean ± std over seeds per configuration (markdown, optional CSV)")
    p.add_argument("sweep", metavar="SWEEP_DIR", help="directory searched for **/metrics.h5")
    p.add_argument("--by", type=_keys, default=_keys(DEFAULT_BY), help=f"config keys (default {DEFAULT_BY})")
    p.add_argument("--csv", type=Path, help="also write the table, one row per configuration and level")

    p = commands.add_parser("plot", help="PNG figures per configuration and per run")
    p.add_argument("runs", nargs="+", metavar="RUN_OR_SWEEP", help="run directories, metrics.h5 files or sweeps")
    p.add_argument("--out", type=Path, required=True, help="directory for the figures")
    p.add_argument("--by", type=_keys, default=_keys(DEFAULT_BY), help=f"config keys (default {DEFAULT_BY})")

    p = commands.add_parser("scaling", help="speed-up and efficiency of a scaling study")
    p.add_argument("results", type=Path, metavar="RESULTS", help="CSV written by the scaling driver")
    p.add_argument("--out", type=Path, required=True, help="directory for scaling.csv and the figures")
    return parser


def _note_partial(runs):
    for run in runs:
        if not run.complete:
            print(f"note: {run.path} is partial: {run.n_rows} of {run.config['epochs'] + 1} evaluations; "
                  "'final' is its last finished epoch", file=sys.stderr)


def _run(args):
    if args.command == "summary":
        runs = find_runs(args.runs)
        _note_partial(runs)
        print("\n".join(summary(run) for run in runs), end="")
    elif args.command == "table":
        runs = find_runs([args.sweep])
        _note_partial(runs)
        stats = [table.config_stats(args.by, values, group) for values, group in group_runs(runs, args.by).items()]
        print(table.markdown(args.by, stats), end="")
        if args.csv:
            table.write_csv(args.csv, args.by, stats)
    elif args.command == "plot":
        runs = find_runs(args.runs)
        _note_partial(runs)
        for path in plots.plot_groups(group_runs(runs, args.by), args.by, args.out):
            print(path)
    else:
        studies = scaling.read_results(args.results)
        print(scaling.markdown(studies), end="")
        for path in scaling.write_report(studies, args.out):
            print(f"wrote {path}", file=sys.stderr)


def main(argv=None):
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except InputError as err:
        print(f"dualnet-analyze: error: {err}", file=sys.stderr)
        return 2
    return 0
