#!/usr/bin/env python3
"""Expand a dualnet sweep file into a manifest and submit it as one Slurm array job.

    python3 jobs/sweep.py expand SWEEP.toml [--dir DIR]
    python3 jobs/sweep.py submit SWEEP.toml [--dir DIR] [--throttle N] [--wait] [--dry-run]
                                            [--force] [-- SBATCH OPTIONS ...]
    python3 jobs/sweep.py status SWEEP.toml [--dir DIR] [--list]

A sweep file (TOML) names axes and seeds; every combination of axis values times every seed
is one run (one array task). See jobs/paper-sweep.toml for the format:

    name = "paper"                  # sweep name (also the Slurm job name: sweep-<name>)
    config = "path/to/base.toml"    # optional dualnet config file, relative to this file
    seeds = [1, 2, 3, 4, 5]         # or {first = 1, last = 5}
    dir = "..."                     # optional sweep directory (default
                                    #   $DUALNET_RUNS_DIR/sweeps/<name>)
    [set]                           # optional fixed key=value overrides for every run
    [axes]                          # key = [values...]; the cross product is swept
    [slurm]                         # optional per-task sbatch options: time = "01:00:00",
                                    #   ntasks = 2, gpus_per_task = 1, throttle = 8, ...

Layout of the sweep directory:
    manifest.tsv     one line per task: index, run directory, dualnet arguments (tab separated)
    manifest.json    the same with the parameters of each run, for analysis
    manifests/       the manifest each submission used (array tasks read theirs, by hash)
    runs/<name>/     one dualnet run directory per task, named from its parameters
    logs/            Slurm output, <array job id>_<task>.out
    submissions.log  one line per submission

A run is finished when its run directory has timing.json (dualnet writes it last).
`submit` submits only the tasks whose run is not finished (an interrupted run resumes from
its checkpoint), as one array job `--array=<indices>%<throttle>` of jobs/sweep.sbatch, through
jobs/submit.sh (which adds the site settings). It refuses while an earlier submission of the
same sweep is still queued or running, unless --force.

Exit status: 0 success (also when nothing is left to run), 2 bad sweep file or arguments,
1 submission failed; with --wait, sbatch's status (non-zero if a task failed).
Only the Python standard library is used (Python >= 3.11 for tomllib).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

JOBS_DIR = Path(__file__).resolve().parent
REPO = JOBS_DIR.parent
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_KEYS = {"out", "resume", "overwrite", "seed"}
SEP = "__"  # between key-value pairs in run directory names


class SweepError(Exception):
    """A problem with the sweep file or the command line (exit status 2)."""


def fmt_value(v) -> str:
    """Spell a TOML value the way dualnet's key=value command line takes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        if not v or any(c in v for c in "\t\n"):
            raise SweepError(f"value {v!r}: empty or contains a tab/newline")
        return v
    raise SweepError(f"value {v!r}: only strings, numbers and booleans can be swept")


def dir_part(v: str) -> str:
    """A value as it appears in a run directory name."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", v)


def load_sweep(path: Path, dir_override: str | None) -> dict:
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise SweepError(f"cannot read {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path}: {e}") from e

    known = {"name", "config", "seeds", "dir", "set", "axes", "slurm", "description"}
    unknown = set(doc) - known
    if unknown:
        raise SweepError(f"{path}: unknown top-level keys {sorted(unknown)} (known: {sorted(known)})")

    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise SweepError(f"{path}: name must be letters, digits, '.', '_' or '-' (got {name!r})")

    config = doc.get("config")
    if config is not None:
        if not isinstance(config, str):
            raise SweepError(f"{path}: config must be a path string")
        cpath = (path.parent / config).resolve()
        if not cpath.is_file():
            raise SweepError(f"{path}: config file {cpath} does not exist")
        config = str(cpath)

    seeds = doc.get("seeds", [])
    if isinstance(seeds, dict):
        try:
            seeds = list(range(int(seeds["first"]), int(seeds["last"]) + 1))
        except (KeyError, TypeError, ValueError) as e:
            raise SweepError(f"{path}: seeds table needs integer 'first' and 'last'") from e
    if not isinstance(seeds, list) or not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in seeds
    ):
        raise SweepError(f"{path}: seeds must be a non-empty list of integers or {{first, last}}")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"{path}: seeds repeat")

    fixed = doc.get("set", {})
    axes = doc.get("axes", {})
    slurm = doc.get("slurm", {})
    for tname, table in (("set", fixed), ("axes", axes), ("slurm", slurm)):
        if not isinstance(table, dict):
            raise SweepError(f"{path}: [{tname}] must be a table")
    for key in list(fixed) + list(axes):
        if not KEY_RE.match(key) or SEP in key:
            raise SweepError(f"{path}: bad key {key!r}")
        if key in RESERVED_KEYS:
            raise SweepError(f"{path}: key {key!r} is managed by the sweep (seeds, run directories)")
    both = set(fixed) & set(axes)
    if both:
        raise SweepError(f"{path}: keys both in [set] and [axes]: {sorted(both)}")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}: axis {key!r} must be a non-empty list")
        spelled = [fmt_value(v) for v in values]
        if len(set(spelled)) != len(spelled):
            raise SweepError(f"{path}: axis {key!r} repeats a value")
    fixed_args = [f"{k}={fmt_value(v)}" for k, v in fixed.items()]

    if dir_override:
        sweep_dir = Path(dir_override)
    elif "dir" in doc:
        sweep_dir = path.parent / str(doc["dir"])
    else:
        sweep_dir = Path(site_value("DUALNET_RUNS_DIR")) / "sweeps" / name
    sweep_dir = Path(os.path.abspath(sweep_dir))

    tasks = []
    keys = list(axes)
    for combo in itertools.product(*(axes[k] for k in keys)):
        for seed in seeds:
            params = dict(zip(keys, combo))
            params["seed"] = seed
            run_name = SEP.join(f"{k}-{dir_part(fmt_value(v))}" for k, v in params.items())
            args = ([config] if config else []) + fixed_args + [
                f"{k}={fmt_value(v)}" for k, v in params.items()
            ]
            tasks.append(
                {
                    "index": len(tasks),
                    "run_dir": str(sweep_dir / "runs" / run_name),
                    "params": params,
                    "args": args,
                }
            )
    names = [t["run_dir"] for t in tasks]
    if len(set(names)) != len(names):
        raise SweepError(f"{path}: two runs map to the same directory name; make the values distinct")

    throttle = slurm.get("throttle")
    sbatch_opts = []
    for k, v in slurm.items():
        if k == "throttle":
            continue
        if not KEY_RE.match(k):
            raise SweepError(f"{path}: bad [slurm] option {k!r}")
        if k in {"array", "output", "error", "job_name", "wait"}:
            raise SweepError(f"{path}: [slurm] {k} is set by sweep.py")
        opt = f"--{k.replace('_', '-')}"
        if v is True:
            sbatch_opts.append(opt)  # a flag, e.g. exclusive = true
        elif v is not False:
            sbatch_opts.append(f"{opt}={fmt_value(v)}")

    return {
        "file": str(path.resolve()),
        "name": name,
        "dir": sweep_dir,
        "config": config,
        "seeds": seeds,
        "set": fixed,
        "axes": axes,
        "tasks": tasks,
        "sbatch_opts": sbatch_opts,
        "throttle": throttle,
    }


_site_cache: dict[str, str] = {}


def site_value(var: str) -> str:
    """A setting as the job scripts see it (site file + environment + defaults)."""
    if var not in _site_cache:
        env = dict(os.environ, DUALNET_HOME=os.environ.get("DUALNET_HOME", str(REPO)))
        script = 'source "$DUALNET_HOME/jobs/lib/dualnet-job.sh" && dn_load_site && printf "%s" "${!1}"'
        r = subprocess.run(
            ["bash", "-c", script, "site", var], env=env, capture_output=True, text=True
        )
        if r.returncode != 0:
            raise SweepError(f"reading site settings failed: {r.stderr.strip()}")
        _site_cache[var] = r.stdout
    return _site_cache[var]


def run_state(run_dir: str) -> str:
    p = Path(run_dir)
    if (p / "timing.json").exists():
        return "finished"
    if (p / "checkpoints" / "latest").exists() or (p / "checkpoints" / "latest").is_symlink():
        return "resumable"
    if p.exists():
        return "stale"
    return "new"


def compress(indices: list[int]) -> str:
    """[0,1,2,5,7,8] -> '0-2,5,7-8'"""
    parts = []
    for _, grp in itertools.groupby(enumerate(sorted(indices)), lambda p: p[1] - p[0]):
        g = [i for _, i in grp]
        parts.append(str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}")
    return ",".join(parts)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_manifest(sweep: dict) -> Path:
    """Write manifest.tsv/.json and manifests/<hash>.tsv; return the hashed manifest."""
    d: Path = sweep["dir"]
    (d / "manifests").mkdir(parents=True, exist_ok=True)
    (d / "logs").mkdir(exist_ok=True)
    (d / "runs").mkdir(exist_ok=True)
    lines = ["# task\trun_dir\tdualnet train arguments (generated by jobs/sweep.py)"]
    for t in sweep["tasks"]:
        lines.append("\t".join([str(t["index"]), t["run_dir"], *t["args"]]))
    tsv = "\n".join(lines) + "\n"
    digest = hashlib.sha256(tsv.encode()).hexdigest()[:12]
    hashed = d / "manifests" / f"{digest}.tsv"
    if not hashed.exists():
        atomic_write(hashed, tsv)
    atomic_write(d / "manifest.tsv", tsv)
    meta = {
        "format": "dualnet-sweep-manifest",
        "name": sweep["name"],
        "sweep_file": sweep["file"],
        "config": sweep["config"],
        "set": sweep["set"],
        "axes": sweep["axes"],
        "seeds": sweep["seeds"],
        "tasks": sweep["tasks"],
    }
    atomic_write(d / "manifest.json", json.dumps(meta, indent=1) + "\n")
    try:
        shutil.copyfile(sweep["file"], d / "sweep.toml")
    except shutil.SameFileError:
        pass
    return hashed


def cmd_expand(sweep: dict, _args) -> int:
    hashed = write_manifest(sweep)
    print(f"{len(sweep['tasks'])} tasks -> {sweep['dir']}/manifest.tsv (this version: {hashed.name})")
    return 0


def cmd_status(sweep: dict, args) -> int:
    counts: dict[str, int] = {}
    for t in sweep["tasks"]:
        s = run_state(t["run_dir"])
        counts[s] = counts.get(s, 0) + 1
        if args.list and s != "finished":
            print(f"{t['index']}\t{s}\t{t['run_dir']}")
    total = len(sweep["tasks"])
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("finished", "resumable", "stale", "new"))
    print(f"sweep {sweep['name']}: {total} tasks: {summary}")
    return 0


def queued_jobs(job_name: str) -> list[str]:
    if shutil.which("squeue") is None:
        return []
    r = subprocess.run(
        ["squeue", "-h", "--me", "-n", job_name, "-o", "%i %T"], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise SweepError(f"squeue failed: {r.stderr.strip()}")
    return [l for l in r.stdout.splitlines() if l.strip()]


def max_array_size() -> int | None:
    if shutil.which("scontrol") is None:
        return None
    r = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", r.stdout, re.M)
    return int(m.group(1)) if m else None


def cmd_submit(sweep: dict, args) -> int:
    hashed = write_manifest(sweep)
    todo = [t["index"] for t in sweep["tasks"] if run_state(t["run_dir"]) != "finished"]
    total = len(sweep["tasks"])
    if not todo:
        print(f"sweep {sweep['name']}: all {total} runs finished; nothing to submit")
        return 0
    job_name = f"sweep-{sweep['name']}"
    if not args.dry_run and not args.force:
        running = queued_jobs(job_name)
        if running:
            raise SweepError(
                f"an earlier submission of sweep {sweep['name']} is still in the queue "
                f"({'; '.join(running)}); wait for it, scancel it, or pass --force"
            )
    limit = max_array_size()
    if limit is not None and max(todo) >= limit:
        raise SweepError(
            f"task index {max(todo)} >= MaxArraySize {limit}: split the sweep into smaller files"
        )
    throttle = args.throttle if args.throttle is not None else sweep["throttle"]
    spec = compress(todo)
    if throttle is not None:
        if not isinstance(throttle, int) or isinstance(throttle, bool) or throttle < 1:
            raise SweepError(f"throttle must be a positive integer (got {throttle!r})")
        spec += f"%{throttle}"
    cmd = [
        str(JOBS_DIR / "submit.sh"),
        f"--job-name={job_name}",
        f"--array={spec}",
        f"--output={sweep['dir']}/logs/%A_%a.out",
        *sweep["sbatch_opts"],
        *(["--wait"] if args.wait else []),
        *args.sbatch,
        str(JOBS_DIR / "sweep.sbatch"),
        str(hashed),
    ]
    print(f"sweep {sweep['name']}: submitting {len(todo)} of {total} tasks (--array={spec})")
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    env = dict(os.environ, DUALNET_HOME=os.environ.get("DUALNET_HOME", str(REPO)))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    job_id = None
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        m = re.match(r"Submitted batch job (\d+)", line)
        if m and job_id is None:
            job_id = m.group(1)
            with (sweep["dir"] / "submissions.log").open("a") as f:
                stamp = datetime.datetime.now().isoformat(timespec="seconds")
                f.write(f"{stamp}\tjob={job_id}\tarray={spec}\tmanifest={hashed.name}\n")
    rc = proc.wait()
    if job_id is None:
        print(f"sweep.py: submission failed (status {rc})", file=sys.stderr)
        return rc or 1
    return rc


def main(argv: list[str]) -> int:
    # Everything after a lone "--" goes to sbatch.
    sbatch_extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, sbatch_extra = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(
        prog="sweep.py",
        description="Expand a dualnet sweep file and submit it as a Slurm array job.",
        epilog="See the module docstring (head of jobs/sweep.py) and docs/cluster.md.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("expand", "write the manifest only"),
        ("submit", "write the manifest and submit the unfinished tasks"),
        ("status", "count finished / unfinished runs"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("sweep_file", type=Path)
        sp.add_argument("--dir", help="sweep directory (default: from the sweep file or "
                        "$DUALNET_RUNS_DIR/sweeps/<name>)")
        if name == "submit":
            sp.add_argument("--throttle", type=int, help="at most N tasks at once (%%N)")
            sp.add_argument("--wait", action="store_true", help="sbatch --wait: return when all tasks end")
            sp.add_argument("--dry-run", action="store_true", help="print the sbatch command only")
            sp.add_argument("--force", action="store_true",
                            help="submit even if an earlier submission is still queued")
        if name == "status":
            sp.add_argument("--list", action="store_true", help="list the unfinished runs")
    args = p.parse_args(argv)
    args.sbatch = sbatch_extra
    if sbatch_extra and args.command != "submit":
        p.error("sbatch options after -- only go with submit")
    try:
        sweep = load_sweep(args.sweep_file, args.dir)
        return {"expand": cmd_expand, "submit": cmd_submit, "status": cmd_status}[args.command](sweep, args)
    except SweepError as e:
        print(f"sweep.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
