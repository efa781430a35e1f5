"""The `dualnet-analyze` command: summary, table, plot, compare, scaling, claims.

Input problems (InputError) end the command with one line per problem on stderr and exit
code 2; anything else is a bug and keeps its traceback.
"""

import argparse
import sys
from pathlib import Path

from . import __version__, claims, plots, scaling, table
from .errors import InputError, Refusal
from .summary import summary
from .sweep import BOOKKEEPING_KEYS, configurations, drop_collapsed, drop_unfinished, find_runs, problems

GROUPING_HELP = (f"Runs are grouped into configurations by EVERY config key except seed and the bookkeeping keys "
                 f"({', '.join(sorted(BOOKKEEPING_KEYS))}); epochs is a grouping key.")


def _keys(text):
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise argparse.ArgumentTypeError("name at least one config key")
    return keys


def _formats(text):
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in plots.FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"choose from {','.join(plots.FORMATS)} (got {text!r})")
    return list(dict.fromkeys(formats))


def _positive(text):
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _sweep_options(p, by=True):
    """Options of every command that groups runs into configurations."""
    if by:
        p.add_argument("--by", type=_keys, metavar="KEY,...",
                       help="comma-separated config keys to show, in this order (default: the keys that vary); "
                       "grouping still uses every science key, and a key needed to tell two "
                       "configurations apart is added")
    p.add_argument("--allow-duplicates", action="store_true",
                   help="count a seed that appears twice in a configuration as two samples (default: refuse)")
    p.add_argument("--complete-only", action="store_true", help="drop unfinished (killed) runs")
    p.add_argument("--exclude-collapsed", action="store_true",
                   help="drop runs whose network collapsed (docs/metrics-format.md#collapse); runs of unknown "
                   "collapse (older files) are kept")


def _figure_options(p):
    p.add_argument("--out", type=Path, required=True, help="directory for the figures")
    p.add_argument("--format", type=_formats, default=["png"], metavar="png,pdf,svg",
                   help="any subset, comma-separated (default png)")
    p.add_argument("--dpi", type=_positive, default=plots.DEFAULT_DPI,
                   help=f"resolution of PNGs (default {plots.DEFAULT_DPI})")


def _parser():
    parser = argparse.ArgumentParser(prog="dualnet-analyze", description=__doc__.splitlines()[0],
                                     epilog=GROUPING_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("summary", help="per-level correlation, loss, operator norms and collapse of runs "
                            "(markdown)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory or its metrics.h5")

    p = commands.add_parser("table", help="mean ± std over seeds per configuration (markdown, optional CSV)",
                            description="Mean ± sample std over seeds of the per-level best correlation, one "
                            "row per configuration. " + GROUPING_HELP + " Keys constant over all runs are stated "
                            "once above the table. Duplicate seeds in a configuration are refused; unfinished "
                            "runs and configurations whose runs differ in length are warned about on stderr. "
                            "The column collapsed counts the seeds whose network collapsed "
                            "(docs/metrics-format.md#collapse).")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="sweep directories searched for **/metrics.h5, or runs")
    p.add_argument("--csv", type=Path, help="also write the table, one row per configuration and level")
    _sweep_options(p)

    p = commands.add_parser("plot", help="figures per configuration and per run (PNG, PDF, SVG)",
                            description="Per configuration: best |corr|, operator norms, alignment and spectrum "
                            "against epoch (seed mean and band), best |corr| against |rho_root|; per run: the "
                            "latent x neuron heat map. " + GROUPING_HELP)
    p.add_argument("runs", nargs="+", metavar="RUN_OR_SWEEP", help="run directories, metrics.h5 files or sweeps")
    _figure_options(p)
    _sweep_options(p)

    p = commands.add_parser("compare", help="cross-configuration figure: final best |corr| per level against "
                            "hid and delta_lower, one panel per loss",
                            description="The figure form of the paper's table: final best |corr| per level "
                            "(mean ± sample std over seeds) against each --x key, one panel per value of "
                            "--panels; configurations differing in further keys are drawn as separate series. "
                            "Writes compare-vs-<key>.<format>. " + GROUPING_HELP)
    p.add_argument("runs", nargs="+", metavar="RUN_OR_SWEEP", help="run directories, metrics.h5 files or sweeps")
    p.add_argument("--x", type=_keys, default=["hid", "delta_lower"], metavar="KEY,...",
                   help="config keys for the x axis, one figure each (default hid,delta_lower)")
    p.add_argument("--panels", default="loss", metavar="KEY", help="config key with one panel per value (default loss)")
    _figure_options(p)
    _sweep_options(p, by=False)

    p = commands.add_parser("claims", help="the paper's six HLTM claims checked on a sweep and covop reports "
                            "(markdown)",
                            description="One row per claim of the paper's HLTM study: the measured numbers "
                            "(mean ± std over seeds), the criterion and whether it holds. Claims 1-4 from the "
                            "runs below SWEEP_DIR, claims 5-6 from the `dualnet covop` reports below --covop. "
                            "Collapsed runs count in claims 1-2 and are left out of 3-4; the verdict says what "
                            "the other choice gives. " + GROUPING_HELP)
    p.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="directory searched for **/metrics.h5")
    p.add_argument("--covop", type=Path, metavar="DIR", help="directory searched for covop reports (**/*.h5)")
    p.add_argument("--allow-duplicates", action="store_true",
                   help="count a seed that appears twice in a configuration as two samples (default: refuse)")
    p.add_argument("--complete-only", action="store_true", help="drop unfinished (killed) runs")
    # claims weighs collapsed runs itself, both ways, so it has no --exclude-collapsed
    p.set_defaults(exclude_collapsed=False)

    p = commands.add_parser("scaling", help="speed-up and efficiency of a scaling study")
    p.add_argument("results", type=Path, metavar="RESULTS", help="CSV written by the scaling driver")
    p.add_argument("--out", type=Path, required=True, help="directory for scaling.csv and the figures")
    return parser


def _say(kind, line):
    print(f"dualnet-analyze: {kind}: {line}", file=sys.stderr)


def _note_partial(runs):
    for run in runs:
        if not run.complete:
            _say("note", f"{run.path} is partial: {run.n_rows} of {run.config['epochs'] + 1} evaluations; "
                 "'final' is its last finished epoch")


def _sweep(args, paths, keep=None):
    """Runs grouped by every science key and the keys to show, after the checks: warnings
    are printed, errors refuse the command (Refusal). `keep` filters the runs found."""
    runs = find_runs(paths)
    if keep is not None:
        runs = keep(runs)
        if not runs:
            raise InputError(f"{', '.join(map(str, paths))}: no run outside the covop directory")
    for wanted, drop, what in ((args.complete_only, drop_unfinished, "complete run (--complete-only)"),
                               (args.exclude_collapsed, drop_collapsed, "run left (--exclude-collapsed)")):
        if not wanted:
            continue
        runs, notes = drop(runs)
        for line in notes:
            _say("note", line)
        if not runs:
            raise InputError(f"{', '.join(map(str, paths))}: no {what}")
    sweep = configurations(runs)
    shown, added = sweep.display_keys(getattr(args, "by", None))
    if added:
        _say("note", f"--by {','.join(args.by)} shows some configurations alike; also showing {', '.join(added)}")
    errors, warnings = problems(sweep, shown, args.allow_duplicates)
    for line in warnings:
        _say("warning", line)
    if errors:
        raise Refusal(errors)
    return sweep, shown


def _run(args):
    if args.command == "summary":
        runs = find_runs(args.runs)
        _note_partial(runs)
        print("\n".join(summary(run) for run in runs), end="")
    elif args.command == "table":
        sweep, shown = _sweep(args, args.dirs)
        stats = table.sweep_stats(sweep, shown)
        print(table.markdown(shown, stats, sweep), end="")
        if args.csv:
            table.write_csv(args.csv, shown, stats, sweep.keys)
    elif args.command == "plot":
        sweep, shown = _sweep(args, args.runs)
        for path in plots.plot_groups(sweep, shown, args.out, args.format, args.dpi):
            print(path)
    elif args.command == "compare":
        sweep, _ = _sweep(args, args.runs)
        written = plots.compare_figures(sweep, args.x, args.panels, args.out, args.format, args.dpi)
        if not written:
            raise InputError(f"{', '.join(args.x)}: none of these keys takes two or more values in the runs; "
                             "nothing to compare")
        for path in written:
            print(path)
    elif args.command == "claims":
        sweep, shown = _sweep(args, [args.sweep_dir], keep=lambda runs: claims.covop_inside(runs, args.covop))
        result = claims.claims(sweep, shown, args.covop)
        print(claims.markdown(result, sweep, [args.sweep_dir], args.covop), end="")
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
    except Refusal as err:
        for line in err.lines:
            _say("error", line)
        return 2
    except InputError as err:
        _say("error", err)
        return 2
    return 0
