"""`claims`: the six claims of the paper's HLTM study, measured on a sweep and on covop reports.

Claims 1-4 read the sweep's runs (level_mean_best_corr at row 0 and at the last finished
row); claims 5-6 read the HDF5 reports of `dualnet covop` (docs/covop.md). Each claim has one
stated criterion and a verdict: yes, partly (claims 3-4 only: the trend holds end to end but
not at every step) or no; n/a when the input cannot show it.

Collapsed runs (docs/metrics-format.md#collapse): claims 1-2 use every run (a collapse is
something training did), claims 3-4 leave collapsed runs out (a collapsed network says
nothing about what its hid or polarity can learn). Both choices are computed, and the
verdict cell says when the other choice would change it.
"""

import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .errors import InputError
from .markdown import table
from .sealed import MAGIC, SEAL_BYTES, verify_sealed
from .sweep import NOT_GROUPING_KEYS, label, sort_key, value_text

COVOP_FORMAT = "dualnet-covop"
# Claim 5's thresholds: "small" and "falls as batch^-1/2".
MAX_SIMP_ERROR = 0.02
SLOPE_RANGE = (-0.65, -0.35)
COVOP_LOSSES = ("infonce", "triplet")


@dataclass
class Claim:
    number: int
    text: str
    evidence: str  # one markdown table cell (lines joined with <br>)
    criterion: str
    verdict: str
    details: str = ""  # a markdown section below the summary table


# ---------------------------------------------------------------- numbers and formatting

def mean_std(values):
    """(mean, sample std) over seeds; std NaN for one value, both NaN for none."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else math.nan


def fmt(values, digits=4, signed=False, scale=1.0, unit=""):
    """'0.9123 ± 0.0040' from per-seed values ('n/a' where there are none)."""
    mean, std = mean_std(np.asarray(values, dtype=float) * scale)
    if math.isnan(mean):
        return "n/a"
    head = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    tail = "n/a" if math.isnan(std) else f"{std:.{digits}f}"
    return f"{head} ± {tail}{unit}"


def pct(values, digits=2):
    return fmt(values, digits=digits, scale=100.0, unit=" %")


def spearman(x, y):
    """Spearman rank correlation (ties get their mean rank); NaN when either is constant."""
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values):
    values = np.asarray(values, dtype=float)
    return np.array([(values < v).sum() + ((values == v).sum() + 1) / 2 for v in values])


def _verdict(ok):
    return "**yes**" if ok else "**no**"


def _cell(lines):
    return "<br>".join(lines)


# ---------------------------------------------------------------- claims 1-4: the sweep

def _level_mean(run, row):
    return run.metrics["level_mean_best_corr"][row]


def _gain(run):
    """Claim 1's number: final - initial level-mean best_corr, averaged over levels."""
    return float(np.mean(_level_mean(run, -1) - _level_mean(run, 0)))


def _final(run):
    """Claims 3-4's number: the final level-mean best_corr, averaged over levels."""
    return float(np.mean(_level_mean(run, -1)))


def _kept(runs, exclude_collapsed):
    return [run for run in runs if not (exclude_collapsed and run.collapsed)]


def _config_rows(sweep, shown):
    """[(label, runs by seed)] in display order."""
    return [(label(shown, sweep.project(values, shown)) or "all runs", sweep.groups[values])
            for values in sweep.ordered(shown)]


def _runs_note(runs, exclude_collapsed):
    n_collapsed = sum(run.collapsed is True for run in runs)
    unknown = sum(run.collapsed is None for run in runs)
    text = f"{len(runs)} runs"
    if exclude_collapsed:
        text = f"{len(runs) - n_collapsed} runs ({n_collapsed} collapsed left out)"
    elif n_collapsed:
        text += f" (incl. {n_collapsed} collapsed)"
    if unknown:
        text += f", {unknown} of unknown collapse"
    return text


def _yes_no(verdict):
    return verdict if isinstance(verdict, str) else ("yes" if verdict else "no")


def _other_choice(default, other, exclude_by_default, any_collapsed):
    """The verdict under the other collapse choice, shown when there are collapsed runs at all."""
    if not any_collapsed:
        return ""
    choice = "with collapsed runs" if exclude_by_default else "without collapsed runs"
    same = "also" if _yes_no(other) == _yes_no(default) else "but"
    return f"<br>({same} {_yes_no(other)} {choice})"


def claim_training(sweep, shown):
    """Claim 1: the level-averaged gain final - init is positive in every configuration."""
    def measure(exclude):
        rows = []
        for name, runs in _config_rows(sweep, shown):
            gains = [_gain(run) for run in _kept(runs, exclude)]
            rows.append((name, runs, gains))
        ok = all(np.mean(gains) > 0 for _, _, gains in rows if gains)
        return rows, ok

    rows, ok = measure(False)
    _, ok_other = measure(True)
    all_runs = [run for runs in sweep.groups.values() for run in runs]
    measured = [(name, gains) for name, _, gains in rows if gains]
    positive = sum(np.mean(g) > 0 for _, g in measured)
    low = min(measured, key=lambda item: np.mean(item[1]))
    high = max(measured, key=lambda item: np.mean(item[1]))
    runs_up = sum(g > 0 for _, gains in measured for g in gains)
    evidence = _cell([f"gain > 0 in {positive}/{len(measured)} configurations, in {runs_up}/"
                      f"{sum(len(g) for _, g in measured)} runs",
                      f"smallest: {fmt(low[1], signed=True)} ({low[0]})",
                      f"largest: {fmt(high[1], signed=True)} ({high[0]})",
                      _runs_note(all_runs, False)])
    depth = max(run.depth for run in all_runs)
    header = ["configuration", "seeds", "collapsed", "gain (mean over levels)",
              *(f"L{lv} init → final" for lv in range(depth))]
    body = []
    for name, runs, gains in rows:
        cells = [name, len(runs), sum(run.collapsed is True for run in runs), fmt(gains, signed=True)]
        for lv in range(depth):
            init = [_level_mean(run, 0)[lv] for run in runs if lv < run.depth]
            final = [_level_mean(run, -1)[lv] for run in runs if lv < run.depth]
            cells.append(f"{fmt(init)} → {fmt(final)}")
        body.append(cells)
    details = table(header, body)
    return Claim(1, "Correlations with the latents rise with training", evidence,
                 "final − initial level-mean best_corr, averaged over levels, > 0 (seed mean) in every "
                 "configuration; all runs",
                 _verdict(ok) + _other_choice(ok, ok_other, False, any(r.collapsed for r in all_runs)), details)


def claim_levels(sweep, shown):
    """Claim 2: per configuration the final level profile rises from the root towards the leaves."""
    def measure(exclude):
        rows = []
        for name, runs in _config_rows(sweep, shown):
            kept = _kept(runs, exclude)
            rhos = [spearman(np.arange(run.depth), _level_mean(run, -1)) for run in kept]
            rises = [_level_mean(run, -1)[-1] - _level_mean(run, -1)[0] for run in kept]
            rows.append((name, runs, kept, rhos, rises))
        ok = all(np.nanmean(rhos) > 0 and np.mean(rises) > 0 for _, _, kept, rhos, rises in rows if kept)
        return rows, ok

    rows, ok = measure(False)
    _, ok_other = measure(True)
    all_runs = [run for runs in sweep.groups.values() for run in runs]
    measured = [row for row in rows if row[2]]
    rho_pos = sum(np.nanmean(rhos) > 0 for *_, rhos, _ in measured)
    rise_pos = sum(np.mean(rises) > 0 for *_, rises in measured)
    low = min(measured, key=lambda row: np.nanmean(row[3]))
    pairs = [_pair_order(_level_mean(run, -1)) for row in measured for run in row[2]]
    depth = max(run.depth for run in all_runs)
    evidence = _cell([f"Spearman ρ(level, final best_corr) > 0 in {rho_pos}/{len(measured)} configurations; "
                      f"lowest: {fmt(low[3], digits=2)} ({low[0]})",
                      f"all runs: ρ = {fmt([r for row in measured for r in row[3]], digits=2)}; "
                      f"pairs of levels in order: {fmt(pairs, digits=2, scale=100, unit=' %')}",
                      f"L{depth - 1} − L0 > 0 in {rise_pos}/{len(measured)} configurations, "
                      f"all runs: {fmt([x for row in measured for x in row[4]], signed=True)}",
                      _runs_note(all_runs, False)])
    header = ["configuration", "seeds", "Spearman ρ", "pairs in order", f"L{depth - 1} − L0",
              *(f"L{lv} final" for lv in range(depth))]
    body = []
    for name, _runs, kept, rhos, rises in rows:
        cells = [name, len(kept), fmt(rhos, digits=2),
                 fmt([_pair_order(_level_mean(run, -1)) for run in kept], digits=1, scale=100, unit=" %"),
                 fmt(rises, signed=True)]
        cells += [fmt([_level_mean(run, -1)[lv] for run in kept if lv < run.depth]) for lv in range(depth)]
        body.append(cells)
    details = ("Final row; L0 is the root, the highest level is the one just above the leaves. *pairs in order*: "
               "share of level pairs l < l' with best_corr(l) < best_corr(l').\n\n" + table(header, body))
    return Claim(2, "Levels nearer the leaves correlate better", evidence,
                 f"per configuration, Spearman ρ between level (0 = root … {depth - 1}) and the final level-mean "
                 f"best_corr > 0 and L{depth - 1} (above the leaves) > L0 (root), seed means; all runs",
                 _verdict(ok) + _other_choice(ok, ok_other, False, any(r.collapsed for r in all_runs)), details)


def _pair_order(profile):
    """Share of level pairs (l < l') whose best_corr is in the claimed order (deeper is higher)."""
    n = len(profile)
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    return sum(profile[a] < profile[b] for a, b in pairs) / len(pairs) if pairs else math.nan


def claim_monotone(sweep, key, number, text):
    """Claims 3 and 4: the final best_corr rises with `key` at every fixed value of the other keys."""
    if key not in sweep.keys or key not in sweep.varying:
        return Claim(number, text, f"{key} takes one value in the sweep", f"final best_corr rises with {key}",
                     "n/a")
    index = sweep.keys.index(key)
    rest = [k for k in sweep.keys if k != key]
    shown_rest = [k for k in sweep.varying if k != key]

    def measure(exclude):
        """{rest values: [(key value, per-seed finals, runs)]} sorted by the key; verdict."""
        groups = defaultdict(list)
        for values, runs in sweep.groups.items():
            rest_values = tuple(v for i, v in enumerate(values) if i != index)
            groups[rest_values].append((values[index], [_final(run) for run in _kept(runs, exclude)], runs))
        for series in groups.values():
            series.sort(key=lambda item: sort_key((item[0],)))
        steps_ok, ends_ok = True, True
        for series in groups.values():
            means = [np.mean(f) for _, f, _ in series if f]
            if len(means) < 2:
                continue
            steps_ok &= all(b > a for a, b in zip(means, means[1:]))
            ends_ok &= means[-1] > means[0]
        verdict = "yes" if steps_ok else "partly" if ends_ok else "no"
        return dict(sorted(groups.items(), key=lambda item: sort_key(item[0]))), verdict

    groups, verdict = measure(True)
    _, other = measure(False)
    all_runs = [run for runs in sweep.groups.values() for run in runs]
    lines = []
    for rest_values, series in groups.items():
        name = label(shown_rest, [rest_values[rest.index(k)] for k in shown_rest]) or "all"
        chain = " → ".join(f"{value_text(v)}: {fmt(f)}" for v, f, _ in series)
        lines.append(f"{name}: {chain}")
    if len(lines) > 4:  # the paper sweep: summarise, the details list every series
        per_value = defaultdict(list)
        for series in groups.values():
            for v, f, _ in series:
                if f:
                    per_value[v].append(np.mean(f))
        lines = [f"{len(groups)} series; mean over them of the seed means: "
                 + " → ".join(f"{value_text(v)}: {np.mean(m):.4f}" for v, m in
                              sorted(per_value.items(), key=lambda item: sort_key((item[0],))))]
    lines.append(_runs_note(all_runs, True))
    header = [*shown_rest, key, "seeds kept", "collapsed", "final best_corr (mean over levels)", "step"]
    body = []
    for rest_values, series in groups.items():
        previous = None
        for v, finals, runs in series:
            step = ""
            if previous is not None and finals and previous:
                diff = np.mean(finals) - np.mean(previous)
                se = math.sqrt(_var_of_mean(finals) + _var_of_mean(previous))
                step = f"{diff:+.4f} ± {se:.4f}" if not math.isnan(se) else f"{diff:+.4f}"
            body.append([*(value_text(rest_values[rest.index(k)]) for k in shown_rest), value_text(v),
                         len(finals), sum(run.collapsed is True for run in runs), fmt(finals), step])
            previous = finals
    details = ("Seed mean ± sample std of the final level-mean best_corr averaged over levels, collapsed runs "
               "left out; *step*: difference to the previous row ± its standard error.\n\n" + table(header, body))
    any_collapsed = any(run.collapsed for run in all_runs)
    verdict_cell = f"**{verdict}**" + _other_choice(verdict, other, True, any_collapsed)
    return Claim(number, text, _cell(lines),
                 f"the final level-mean best_corr averaged over levels (seed mean) rises at every step of {key}, "
                 f"at each fixed value of the other keys (partly: only from the smallest to the largest {key}); "
                 "collapsed runs left out", verdict_cell, details)


def _var_of_mean(values):
    return np.var(values, ddof=1) / len(values) if len(values) > 1 else math.nan


# ---------------------------------------------------------------- claims 5-6: covop reports

@dataclass
class CovopReport:
    path: Path
    config: dict
    seed: int
    epoch: int
    batch: int
    samples: int  # anchors behind the class means of K
    d2: tuple  # mean d² of (positive, negative) pairs: the scale tau is compared with
    simp: dict | None  # rel_error, cosine: [level]
    losses: dict  # loss -> {"tau": [tau], "rel_residue": [tau, level]}


def _is_covop_file(path):
    try:
        with open(path, "rb") as file:
            head = file.read(SEAL_BYTES)
    except OSError:
        return False
    return head.startswith(MAGIC) and b"\nkind covop\n" in head


def load_covop(path):
    """One report, after its seal is checked (docs/covop.md, 'The report')."""
    import tomllib

    verify_sealed(path, "covop")
    try:
        with h5py.File(path, "r") as file:
            fmt_attr = file.attrs.get("format")
            fmt_attr = fmt_attr.decode() if isinstance(fmt_attr, bytes) else fmt_attr
            if fmt_attr != COVOP_FORMAT:
                raise InputError(f"{path}: not a dualnet covop report (format {fmt_attr!r})")
            text = file.attrs["config_toml"]
            config = tomllib.loads(text.decode() if isinstance(text, bytes) else text)
            simp = None
            if "simp" in file:
                simp = {"rel_error": file["simp/rel_error"][()], "cosine": file["simp/cosine"][()]}
            losses = {name: {"tau": file[f"{name}/tau"][()], "rel_residue": file[f"{name}/rel_residue"][()]}
                      for name in COVOP_LOSSES if name in file}
            return CovopReport(path=Path(path), config=config, seed=int(config["seed"]),
                               epoch=int(file.attrs["epoch"]), batch=int(file.attrs["batch"]),
                               samples=int(file.attrs["samples"]),
                               d2=(float(file.attrs["d2_pos"]), float(file.attrs["d2_neg"])),
                               simp=simp, losses=losses)
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: not a readable covop report ({' '.join(str(err).split())})") from None


def find_covop(directory):
    """Every covop report below `directory` (checkpoints and metrics files are skipped by their seal)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    reports = [load_covop(path) for path in sorted(directory.glob("**/*.h5")) if _is_covop_file(path)]
    if not reports:
        raise InputError(f"{directory}: no dualnet covop report (*.h5) below this directory")
    return reports


def _covop_groups(reports):
    """{label: reports}: one group per configuration (every science key but the seed) and epoch."""
    keys = {}
    for report in reports:
        keys.update((key, None) for key in report.config if key not in NOT_GROUPING_KEYS)
    keys = list(keys)
    groups = defaultdict(list)
    for report in reports:
        groups[(tuple(repr(report.config.get(key)) for key in keys), report.epoch)].append(report)
    varying = [key for i, key in enumerate(keys) if len({values[i] for values, _ in groups}) > 1]
    named = {}
    for (_values, epoch), members in groups.items():
        first = members[0].config
        name = label(varying, [first.get(key) for key in varying])
        when = "initialisation" if epoch < 0 else f"checkpoint of epoch {epoch}"
        named[f"{name + ', ' if name else ''}{when}"] = members
    return named


def _rms(values):
    return float(np.sqrt(np.mean(np.square(values))))


def claim_covop_error(reports):
    """Claim 5: simp's relative error per level is small at the largest batch and falls as batch^-1/2."""
    text = "The L_simp update equals 2·Cov-operator·w (bias-free, unnormalised)"
    with_simp = [r for r in reports if r.simp is not None]
    if not with_simp:
        return Claim(5, text, "no covop report with simp", "", "n/a")
    criterion = (f"max over levels of simp's relative error < {MAX_SIMP_ERROR:.0%} for every seed at the largest "
                 f"batch, and the fitted slope of log(RMS over levels) against log(batch) in "
                 f"[{SLOPE_RANGE[0]}, {SLOPE_RANGE[1]}] (batch^−½)")
    lines, sections, ok = [], [], True
    groups = _covop_groups(with_simp)
    for name, group in groups.items():
        by_seed = defaultdict(list)
        for report in group:
            by_seed[report.seed].append(report)
        top = max(r.batch for r in group)
        worst = [max(r.simp["rel_error"]) for seed in by_seed for r in by_seed[seed] if r.batch == top]
        cosines = [min(r.simp["cosine"]) for seed in by_seed for r in by_seed[seed] if r.batch == top]
        slopes = []
        for members in by_seed.values():
            batches = sorted({r.batch for r in members})
            if len(batches) >= 2:
                x = np.log([r.batch for r in members])
                y = np.log([_rms(r.simp["rel_error"]) for r in members])
                slopes.append(float(np.polyfit(x, y, 1)[0]))
        bad_bias = [r.path for r in group if r.config.get("bias") or r.config.get("normalize_output")]
        ok &= bool(worst) and max(worst) < MAX_SIMP_ERROR and not bad_bias
        if slopes:
            ok &= SLOPE_RANGE[0] <= np.mean(slopes) <= SLOPE_RANGE[1]
        else:
            ok = False
        prefix = f"{name}: " if len(groups) > 1 else ""
        lines.append(f"{prefix}batch {_pow2(top)}: max over levels {pct(worst)} ({len(worst)} seeds), "
                     f"min cos {fmt(cosines, digits=6)}")
        lines.append(f"slope of log error vs log batch: {fmt(slopes, digits=2)}" if slopes
                     else "slope: one batch size only (n/a)")
        if bad_bias:
            lines.append(f"bias or output normalisation on in {len(bad_bias)} reports: not the theorem's setting")
        per_batch = []
        for batch in sorted({r.batch for r in group}):
            at = [r for r in group if r.batch == batch]
            per_batch.append([_pow2(batch), len({r.seed for r in at}), pct([_rms(r.simp["rel_error"]) for r in at]),
                              pct([max(r.simp["rel_error"]) for r in at]),
                              fmt([_rms(r.simp["rel_error"]) * math.sqrt(batch) for r in at], digits=2)])
        depth = len(group[0].simp["rel_error"])
        per_level = [[f"L{lv}", pct([r.simp["rel_error"][lv] for r in group if r.batch == top])]
                     for lv in range(depth)]
        anchors = ("samples = batch" if all(r.samples == r.batch for r in group)
                   else "samples differ from the batch in some reports")
        sections.append(f"{name} ({len(by_seed)} seeds: {', '.join(map(str, sorted(by_seed)))}; {anchors}):\n\n"
                        + table(["batch", "seeds", "RMS error over levels", "max over levels",
                                 "RMS · √batch"], per_batch)
                        + f"\nAt batch {_pow2(top)}, per level:\n\n" + table(["level", "relative error"], per_level))
    return Claim(5, text + ": relative error small, falling as batch^−½", _cell(lines), criterion, _verdict(ok),
                 "\n".join(sections))


def _falls_with_tau(row, report):
    """Claim 6 for one seed: `row` is the level-mean residue at ascending tau."""
    noise = float(np.mean(report.simp["rel_error"])) if report.simp is not None else 0.0
    rises = np.diff(row)
    below = (row[:-1] < 1) & (row[1:] < 1)  # both ends of the step unsaturated
    return bool(row[0] > row[-1] and (rises[below] <= noise).all())


def _same_as_first(report, loss):
    first = report.losses.get(COVOP_LOSSES[0])
    return first is not None and np.array_equal(first["rel_residue"], report.losses[loss]["rel_residue"])


def _pow2(n):
    exponent = math.log2(n)
    return f"2^{int(exponent)}" if exponent.is_integer() else str(n)


def claim_covop_residue(reports):
    """Claim 6: the infonce/triplet residue falls as tau grows (within the simp noise floor)."""
    text = "The infonce/triplet residue grows as τ shrinks"
    with_losses = [r for r in reports if r.losses]
    if not with_losses:
        return Claim(6, text, "no covop report with infonce or triplet", "", "n/a")
    criterion = ("for every seed and loss, the level-mean residue is larger at the smallest τ than at the largest, "
                 "and non-increasing in τ wherever it is below 100 % (at ≥ 100 % the weighted operator no longer "
                 "describes the update: saturated); a rise smaller than the report's level-mean simp error (the "
                 "noise floor) is tolerated")
    lines, sections, ok = [], [], True
    groups = _covop_groups(with_losses)
    for name, group in groups.items():
        top = max(r.batch for r in group)
        used = [r for r in group if r.batch == top]
        prefix = f"{name}: " if len(groups) > 1 else ""
        shown = {}
        for loss in COVOP_LOSSES:
            members = [r for r in used if loss in r.losses]
            if not members:
                continue
            taus = members[0].losses[loss]["tau"]
            if any(not np.array_equal(r.losses[loss]["tau"], taus) for r in members):
                raise InputError(f"{name}: the reports of batch {top} use different τ for {loss}")
            order = np.argsort(taus)
            taus = taus[order]
            residue = np.stack([r.losses[loss]["rel_residue"][order].mean(axis=1) for r in members])  # [seed, tau]
            strict, tolerated = 0, 0
            for r, row in zip(members, residue):
                strict += bool((np.diff(row) <= 0).all())
                tolerated += _falls_with_tau(row, r)
            ok &= tolerated == len(members)
            shown[loss] = (taus, residue, strict, tolerated, len(members))
        for loss, (taus, residue, strict, tolerated, n) in shown.items():
            same = loss != COVOP_LOSSES[0] and COVOP_LOSSES[0] in shown and \
                np.array_equal(shown[COVOP_LOSSES[0]][1], residue)
            if same:
                lines.append(f"{prefix}{loss}: identical to {COVOP_LOSSES[0]} (one negative, margin 0: the same loss)")
                continue
            cells = ", ".join(f"τ={t:g}: {pct(residue[:, i], digits=1)}" for i, t in enumerate(taus))
            lines.append(f"{prefix}{loss} (batch {_pow2(top)}): {cells}")
            lines.append(f"falls as τ grows: {tolerated}/{n} seeds by the criterion, "
                         f"{strict}/{n} strictly at every τ")
        taus = next(iter(shown.values()))[0]
        rows = [[f"{t:g}", *(pct(shown[loss][1][:, i]) for loss in shown)] for i, t in enumerate(taus)]
        sections.append(f"{name}, batch {_pow2(top)} ({len(used)} reports); ‖residue‖/‖g‖ averaged over "
                        "levels:\n\n" + table(["τ", *shown], rows))
        per_seed = []
        for r in sorted(used, key=lambda r: r.seed):
            for loss in shown:
                if loss in r.losses and not (loss != COVOP_LOSSES[0] and _same_as_first(r, loss)):
                    order = np.argsort(r.losses[loss]["tau"])
                    row = r.losses[loss]["rel_residue"][order].mean(axis=1)
                    noise = float(np.mean(r.simp["rel_error"])) if r.simp is not None else math.nan
                    per_seed.append([r.seed, loss, f"{r.d2[0]:.3g}", f"{r.d2[1]:.3g}", f"{100 * noise:.2f} %",
                                     *(f"{100 * x:.1f} %" for x in row),
                                     "yes" if _falls_with_tau(row, r) else "no"])
        sections.append("Per seed (d₊², d₋²: mean squared distances of positive and negative pairs, the scale τ "
                        "is measured against; simp error: the noise floor):\n\n"
                        + table(["seed", "loss", "d₊²", "d₋²", "simp error", *(f"τ={t:g}" for t in taus),
                                 "falls as τ grows"], per_seed))
    return Claim(6, text, _cell(lines), criterion, _verdict(ok), "\n".join(sections))


# ---------------------------------------------------------------- the report

def claims(sweep, shown, covop_dir=None):
    """Every claim, in order; claims 5-6 are n/a without covop reports."""
    result = [claim_training(sweep, shown), claim_levels(sweep, shown),
              claim_monotone(sweep, "hid", 3, "More neurons per node (over-parameterisation, hid) help"),
              claim_monotone(sweep, "delta_lower", 4, "Stronger polarity (larger delta_lower) helps")]
    if covop_dir is None:
        result += [Claim(5, "The L_simp update equals 2·Cov-operator·w", "no --covop directory given", "", "n/a"),
                   Claim(6, "The infonce/triplet residue grows as τ shrinks", "no --covop directory given", "",
                         "n/a")]
    else:
        reports = find_covop(covop_dir)
        result += [claim_covop_error(reports), claim_covop_residue(reports)]
    return result


def markdown(result, sweep, sweep_paths, covop_dir=None):
    runs = [run for group in sweep.groups.values() for run in group]
    collapsed = [run for run in runs if run.collapsed]
    shown = list(sweep.varying)
    lines = ["# The paper's HLTM claims, measured", "",
             f"Sweep: {', '.join(map(str, sweep_paths))}: {len(runs)} runs, {len(sweep.groups)} configurations "
             f"(varying: {', '.join(shown) or 'nothing'}), {len(collapsed)} collapsed.",
             f"Covop reports: {covop_dir if covop_dir is not None else 'none (pass --covop DIR)'}.",
             "Numbers are mean ± sample std over seeds. Collapsed runs (docs/metrics-format.md#collapse) are "
             "included in claims 1–2 and left out of claims 3–4; the verdict cell says what the other choice "
             "gives.", ""]
    body = [[c.number, c.text, c.evidence, c.criterion, c.verdict] for c in result]
    lines.append(table(["#", "claim", "measured (mean ± std over seeds)", "criterion", "holds?"], body))
    if collapsed:
        lines += ["## Collapsed runs", ""]
        for run in collapsed:
            name = label(shown, [run.config.get(k) for k in shown])
            lines.append(f"- {name + ', ' if name else ''}seed {run.config['seed']}: collapsed since epoch "
                         f"{run.collapse_epoch}")
        lines.append("")
    for claim in result:
        if claim.details:
            lines += [f"## {claim.number}. {claim.text}", "", claim.details.rstrip(), ""]
    return "\n".join(lines)


def covop_inside(runs, covop_dir):
    """Runs that lie below the covop directory (its short trainings) are not sweep runs."""
    if covop_dir is None:
        return runs
    root = os.path.realpath(covop_dir)
    return [run for run in runs if not os.path.realpath(run.path).startswith(root + os.sep)]
