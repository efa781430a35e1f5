"""`scaling`: speed-up and parallel efficiency from a scaling study's results CSV.

Speed-up is throughput relative to the smallest rank count of the same kind, and
efficiency is speed-up divided by the rank ratio. For strong scaling (fixed global batch)
that is the classic T(r0)/T(r) / (r/r0); for weak scaling (fixed per-rank batch) the same
formula is per-rank throughput relative to the baseline. The file's own efficiency column
is shown beside the recomputed one but never used. A point is a (ranks, nodes) pair: 2 ranks
on one node and 2 ranks on two nodes are different points (repeats of the same pair are
averaged), drawn as one line per number of ranks per node, each starting at the baseline.
"""

import csv
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator, ScalarFormatter

from .errors import InputError
from .markdown import table

COLUMNS = ("kind", "ranks", "nodes", "global_batch", "per_rank_batch", "samples_per_s", "step_time_s",
           "compute_s", "allreduce_s", "io_s", "efficiency")
KINDS = ("strong", "weak")
TIMES = ("compute_s", "allreduce_s", "io_s")
HEADER = ["kind", "ranks", "nodes", "global_batch", "per_rank_batch", "repeats", "samples_per_s", "speedup",
          "ideal_speedup", "efficiency", "efficiency_in_file", "step_time_s", *TIMES]


@dataclass(frozen=True)
class Study:
    """One kind of study; numeric columns as arrays over (ranks, nodes) points (repeats averaged)."""

    kind: str
    columns: dict
    repeats: np.ndarray

    @property
    def ranks(self):
        return self.columns["ranks"]

    @property
    def speedup(self):
        return self.columns["samples_per_s"] / self.columns["samples_per_s"][0]

    @property
    def ideal(self):
        return self.ranks / self.ranks[0]

    @property
    def efficiency(self):
        return self.speedup / self.ideal

    def lines(self):
        """(label, indices) per ranks-per-node value, each line starting at the baseline point."""
        per_node = np.ceil(self.ranks / self.columns["nodes"]).astype(int)
        groups = sorted(set(per_node.tolist()))
        out = []
        for g in groups:
            idx = [i for i in range(len(self.ranks)) if per_node[i] == g]
            if idx[0] != 0:
                idx = [0, *idx]
            out.append((self.kind if len(groups) == 1 else f"{self.kind}, {g} rank(s)/node", np.array(idx)))
        return out


def read_results(path):
    """Parse and check the CSV; return the studies present, strong first."""
    try:
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: not a dualnet scaling results file (no column {', '.join(missing)})")
            rows = [_parse(path, reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot be read ({err})") from None
    studies = [_study(kind, [r for r in rows if r["kind"] == kind]) for kind in KINDS]
    studies = [s for s in studies if s is not None]
    if not studies:
        raise InputError(f"{path}: no result rows")
    return studies


def _parse(path, line, row):
    if row["kind"] not in KINDS:
        raise InputError(f"{path}:{line}: kind {row['kind']!r} is neither strong nor weak")
    try:
        values = {c: float(row[c]) for c in COLUMNS[1:]}
    except (TypeError, ValueError):
        raise InputError(f"{path}:{line}: a numeric column is empty or not a number") from None
    if values["ranks"] < 1 or values["samples_per_s"] <= 0:
        raise InputError(f"{path}:{line}: ranks must be >= 1 and samples_per_s > 0")
    return {"kind": row["kind"], **values}


def _study(kind, rows):
    """Average repeated measurements of the same (ranks, nodes) point, ordered by ranks, then nodes."""
    if not rows:
        return None
    points = sorted({(r["ranks"], r["nodes"]) for r in rows})
    same = [[r for r in rows if (r["ranks"], r["nodes"]) == p] for p in points]
    columns = {c: np.array([np.mean([r[c] for r in group]) for group in same]) for c in COLUMNS[1:]}
    repeats = np.array([len(group) for group in same])
    return Study(kind=kind, columns=columns, repeats=repeats)


def _rows(study):
    c = study.columns
    for i in range(len(study.ranks)):
        yield [study.kind, int(study.ranks[i]), int(c["nodes"][i]), int(c["global_batch"][i]),
               int(c["per_rank_batch"][i]), int(study.repeats[i]), c["samples_per_s"][i], study.speedup[i],
               study.ideal[i], study.efficiency[i], c["efficiency"][i], c["step_time_s"][i],
               *(c[t][i] for t in TIMES)]


def markdown(studies):
    rows = [[f"{v:.4g}" if isinstance(v, float) else v for v in r] for s in studies for r in _rows(s)]
    return table(HEADER, rows)


def write_csv(path, studies):
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(r for s in studies for r in _rows(s))


def _rank_axis(ax, studies):
    """Rank counts on a log2 axis, labelled with the counts measured."""
    ranks = sorted({int(r) for s in studies for r in s.ranks})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ranks, [str(r) for r in ranks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("ranks")


def speedup_figure(studies):
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for s in studies:
        for label, i in s.lines():
            ax.plot(s.ranks[i], s.speedup[i], marker="o", label=f"{label}: measured")
        ax.plot(s.ranks, s.ideal, ls="--", color=ax.lines[-1].get_color(), label=f"{s.kind}: ideal")
    _rank_axis(ax, studies)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylabel("speed-up (throughput / smallest-rank throughput)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def efficiency_figure(studies):
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for s in studies:
        for label, i in s.lines():
            ax.plot(s.ranks[i], s.efficiency[i], marker="o", label=label)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    _rank_axis(ax, studies)
    ax.set_ylim(0, max(1.1, *(s.efficiency.max() * 1.05 for s in studies)))
    ax.set_ylabel("parallel efficiency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def breakdown_figure(studies):
    """Where a step's time goes, per rank count: stacked compute, allreduce and I/O seconds."""
    fig = Figure(figsize=(5 * len(studies), 4.5), layout="constrained")
    for i, s in enumerate(studies):
        ax = fig.add_subplot(1, len(studies), i + 1)
        x = np.arange(len(s.ranks))
        bottom = np.zeros(len(x))
        for t in TIMES:
            ax.bar(x, s.columns[t], bottom=bottom, label=t.removesuffix("_s"))
            bottom += s.columns[t]
        ax.set_xticks(x, [f"{int(r)}\n{int(n)} node(s)" for r, n in zip(s.ranks, s.columns["nodes"], strict=True)])
        ax.set_xlabel("ranks")
        ax.set_ylabel("seconds")
        ax.set_title(f"{s.kind} scaling", fontsize=9)
        ax.legend(fontsize=8)
    return fig


def write_report(studies, out):
    """Write the recomputed table and the three figures into `out`; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "scaling.csv"]
    write_csv(paths[0], studies)
    for name, make in [("speedup", speedup_figure), ("efficiency", efficiency_figure),
                       ("time_breakdown", breakdown_figure)]:
        path = out / f"scaling_{name}.png"
        make(studies).savefig(path, dpi=100)
        paths.append(path)
    return paths
