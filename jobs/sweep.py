#!/usr/bin/env python3
"""Expand a dualnet sweep file into a manifest and run it: as one Slurm array job, or here.

    python3 jobs/sweep.py expand SWEEP.toml [--dir DIR]
    python3 jobs/sweep.py submit SWEEP.toml [--dir DIR] [--throttle N] [--wait] [--dry-run]
                                            [--force] [-- SBATCH OPTIONS ...]
    python3 jobs/sweep.py run    SWEEP.toml [--dir DIR] [--jobs N] [--ranks R] [--bin PATH]
                                            [--mpiexec "mpiexec ..."] [--dry-run]
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
    logs/            Slurm output, <array job id>_<task>.out; logs/local/<name>.log from `run`
    submissions.log  one line per submission (and per `run` that starts something)

A run is finished when its run directory has timing.json (dualnet writes it last).
`submit` submits only the tasks whose run is not finished (an interrupted run resumes from
its checkpoint), as one array job `--array=<indices>%<throttle>` of jobs/sweep.sbatch, through
jobs/submit.sh (which adds the site settings). It refuses while an earlier submission of the
same sweep is still queued or running, unless --force.

`run` runs the same unfinished runs on this machine, without Slurm, up to N at once
(default: cores // R), each as `dualnet train ARGS out=<run dir>` (R > 1: under
`mpiexec -n R`; --mpiexec or $DUALNET_MPIEXEC, default `mpiexec`, plus --allow-run-as-root
--oversubscribe as root with Open MPI). The run directories, manifests and run states are
those of `submit`, so `status` and a later `submit` agree with it: a finished run is skipped,
one with a checkpoint resumes, a directory without checkpoint starts again (overwrite=true).
Each run's output goes to logs/local/<run name>.log. The progress (done / running / failed /
left, elapsed, ETA) goes to stderr. A run dualnet refuses because its directory is in use by
another dualnet process is skipped ("running elsewhere"), not failed. Ctrl-C or SIGTERM
stops every run at a checkpoint (the signal is forwarded to each dualnet) and prints how to
continue (the same command); a second Ctrl-C kills the runs (their last checkpoint remains).

Exit status: 0 success (also when nothing is left to run), 2 bad sweep file or arguments,
1 submission failed; with --wait, sbatch's status (non-zero if a task failed).
`run`: 0 every run finished (or runs elsewhere), 1 a run failed (they are listed), 2 bad sweep
file or arguments, 130 / 143 stopped by SIGINT / SIGTERM.
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
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
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
    return [line for line in r.stdout.splitlines() if line.strip()]


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


# ----------------------------------------------------------------- run: a sweep without Slurm

IN_USE = b"in use by another dualnet process"  # dualnet's refusal of a second writer (exit 2)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset and cpusets
    except AttributeError:
        return os.cpu_count() or 1


def is_openmpi(exe: str) -> bool:
    try:
        r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in r.stdout + r.stderr or "OpenRTE" in r.stdout + r.stderr


def mpiexec_command(given: str | None) -> list[str]:
    """The launcher for R > 1 ranks: --mpiexec, else $DUALNET_MPIEXEC, else mpiexec."""
    spec = given if given is not None else os.environ.get("DUALNET_MPIEXEC", "")
    try:
        cmd = shlex.split(spec)
    except ValueError as e:
        raise SweepError(f"--mpiexec {spec!r}: {e}") from e
    if not cmd:
        cmd = ["mpiexec"]
        if shutil.which("mpiexec") and is_openmpi("mpiexec"):
            # As tests/cli/lib.sh: Open MPI refuses root without --allow-run-as-root, and more
            # ranks than free cores (several runs at once) without --oversubscribe.
            cmd += ["--allow-run-as-root", "--oversubscribe"] if os.geteuid() == 0 else ["--oversubscribe"]
    if shutil.which(cmd[0]) is None:
        raise SweepError(f"launcher {cmd[0]!r} not found (pass --mpiexec or set DUALNET_MPIEXEC)")
    return cmd


def descendants(pid: int) -> list[int]:
    """Every process below pid (from /proc; empty where there is none)."""
    kids: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        kids.setdefault(ppid, []).append(int(e))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def last_error_line(tail: bytes) -> str:
    """The line that best says why a run failed: the last dualnet error, else the last line
    with text (mpiexec ends with banners of dashes)."""
    lines = [line.strip() for line in tail.decode(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("dualnet") and "error" in line:
            return line
    for line in reversed(lines):
        if any(c.isalnum() for c in line):
            return line
    return "(nothing on stderr)"


class LocalRun:
    """One run of a sweep executed by `run`."""

    def __init__(self, task: dict):
        self.task = task
        self.dir = Path(task["run_dir"])
        self.name = self.dir.name
        self.state = ""  # run_state() when it was started
        self.proc: subprocess.Popen | None = None
        self.log_fd = -1
        self.tail = b""  # end of its stderr
        self.in_use = False
        self.started = 0.0
        self.signalled: set[int] = set()
        self.retried = False
        self.rc: int | None = None
        self.outcome = ""  # finished | failed | stopped | killed | elsewhere | skipped


class LocalSweep:
    """Runs the unfinished runs of a sweep on this machine (see the module docstring)."""

    def __init__(self, sweep: dict, args, binary: str, launcher: list[str], jobs: int):
        self.sweep = sweep
        self.args = args
        self.binary = binary
        self.launcher = launcher
        self.ranks = args.ranks
        self.jobs = jobs
        self.logs = sweep["dir"] / "logs" / "local"
        self.pending: list[LocalRun] = []
        self.running: list[LocalRun] = []
        self.ended: list[LocalRun] = []
        self.durations: list[float] = []
        self.sel = selectors.DefaultSelector()
        self.signals: list[int] = []
        self.stop_sig = 0
        self.killing = False
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.drawn = 0.0
        try:
            self.bin_stat = os.stat(binary)
        except OSError:
            self.bin_stat = None

    # ------------------------------------------------------------------ commands
    def command(self, run: LocalRun, state: str) -> list[str]:
        d = str(run.dir)
        mode = {"resumable": [f"resume={d}"], "stale": [f"out={d}", "overwrite=true"]}.get(state, [f"out={d}"])
        cmd = [self.binary, "train", *run.task["args"], *mode]
        if self.ranks > 1:
            cmd = [*self.launcher, "-n", str(self.ranks), *cmd]
        return cmd

    def launch(self, run: LocalRun) -> None:
        # The state is read again now: another `run` or a Slurm task may have moved it on.
        state = run_state(str(run.dir))
        if state == "finished":
            run.outcome = "skipped"
            self.ended.append(run)
            self.event(run, "already finished: skipped")
            return
        run.state = state
        cmd = self.command(run, state)
        run.dir.parent.mkdir(parents=True, exist_ok=True)
        run.log_fd = os.open(self.logs / f"{run.name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(run.log_fd, f"=== {stamp()} sweep.py run (pid {os.getpid()}): {state}: {shlex.join(cmd)}\n".encode())
        run.started = time.monotonic()
        try:
            # Own session: a Ctrl-C in the terminal reaches sweep.py only, which decides what
            # the runs get; stdin closed so that no run reads the terminal.
            run.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=run.log_fd, stderr=subprocess.PIPE,
                                        start_new_session=True)
        except OSError as e:
            run.rc, run.tail = 127, f"cannot start {cmd[0]}: {e.strerror}".encode()
            self.finish(run, "failed")
            return
        assert run.proc.stderr is not None
        os.set_blocking(run.proc.stderr.fileno(), False)
        self.sel.register(run.proc.stderr, selectors.EVENT_READ, run)
        self.running.append(run)
        self.event(run, f"started ({state})")

    def read_stderr(self, run: LocalRun, until_eof: bool = False) -> None:
        pipe = run.proc.stderr if run.proc else None
        if pipe is None or pipe.closed:
            return
        while True:
            try:
                chunk = os.read(pipe.fileno(), 65536)
            except BlockingIOError:
                chunk = None
            if not chunk:
                if chunk == b"" or until_eof:
                    # EOF, or the run has ended and what is left is held open by a stray process.
                    self.sel.unregister(pipe)
                    pipe.close()
                return
            os.write(run.log_fd, chunk)
            run.tail = (run.tail + chunk)[-8192:]
            run.in_use = run.in_use or IN_USE in run.tail
            if not until_eof:
                return

    def reap(self, run: LocalRun) -> None:
        self.read_stderr(run, until_eof=True)
        rc = run.proc.returncode
        run.rc = rc
        if rc == 0 and (run.dir / "timing.json").exists():
            outcome = "finished"
        elif rc != 0 and run.in_use:
            outcome = "elsewhere"
        elif rc != 0 and (self.killing or run.signalled):
            # Killed by us, or hit by the forwarded signal before dualnet could handle it (it
            # had just started): interrupted, not failed; its state says how to continue.
            outcome = "killed"
        elif rc != 0:
            outcome = "failed"
        elif run_state(str(run.dir)) == "resumable":
            outcome = "stopped"  # by our signal, or by one sent to dualnet itself
        else:
            outcome = "failed"
            run.tail += b"\ndualnet exited 0 but the run has neither timing.json nor a checkpoint"
        self.running.remove(run)
        if (outcome == "failed" and rc == 2 and run.state == "new" and not run.retried and not self.stop_sig
                and b"already exists" in run.tail):
            # Another process created the directory between our look and dualnet's mkdir: look
            # again (it is now in use, resumable or finished) instead of calling that a failure.
            os.write(run.log_fd, f"=== {stamp()} sweep.py: the directory appeared meanwhile; trying again\n".encode())
            os.close(run.log_fd)
            run.retried, run.tail = True, b""
            self.pending.insert(0, run)
            return
        if outcome != "elsewhere" and run.dir.is_dir():
            # One line per attempt, as jobs/lib/dualnet-job.sh writes from Slurm jobs.
            try:
                with (run.dir / "jobs.log").open("a") as f:
                    f.write(f"{stamp(' ')} job=local-{os.getpid()} restart=0 state={run.state} rc={rc} warned=0\n")
            except OSError:
                pass
        self.finish(run, outcome)

    def finish(self, run: LocalRun, outcome: str) -> None:
        run.outcome = outcome
        took = time.monotonic() - run.started
        if outcome == "finished":
            self.durations.append(took)
        os.write(run.log_fd, f"=== {stamp()} sweep.py: {outcome}, exit status {run.rc}\n".encode())
        os.close(run.log_fd)
        self.ended.append(run)
        what = {
            "finished": f"finished ({took:.1f} s)",
            "failed": f"FAILED (exit status {run.rc}): {last_error_line(run.tail)}",
            "killed": "killed" if self.killing else "ended by the signal before dualnet could handle it",
            "stopped": "stopped at a checkpoint",
            "elsewhere": "skipped: running elsewhere (its directory is in use by another dualnet process)",
        }[outcome]
        self.event(run, what)

    # ------------------------------------------------------------------ signals
    def on_signal(self, signum, _frame) -> None:
        self.signals.append(signum)  # handled in the loop, never inside the handler

    def handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if not self.stop_sig:
                self.stop_sig = sig
                self.say(f"{signal.Signals(sig).name}: stopping {len(self.running)} running run(s) at a "
                         f"checkpoint, starting no more (again to kill them)")
            elif not self.killing:
                self.killing = True
                self.say(f"{signal.Signals(sig).name} again: killing {len(self.running)} run(s) (SIGKILL)")
                self.kill_all()
        if self.stop_sig and not self.killing:
            self.forward(self.stop_sig)

    def forward(self, sig: int) -> None:
        """Send sig once to every dualnet process of the running runs. Under mpiexec the ranks
        are signalled themselves: Open MPI's mpiexec turns SIGINT/SIGTERM into SIGKILL for its
        ranks after a moment, too soon for a checkpoint. Called on every loop turn, so ranks that
        appear later are signalled too."""
        for run in self.running:
            if self.ranks == 1:
                targets = [run.proc.pid]
            else:
                targets = [p for p in descendants(run.proc.pid) if p not in run.signalled and self.is_dualnet(p)]
            for pid in targets:
                if pid in run.signalled:
                    continue
                run.signalled.add(pid)
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def is_dualnet(self, pid: int) -> bool:
        try:
            if self.bin_stat is not None and os.path.samestat(os.stat(f"/proc/{pid}/exe"), self.bin_stat):
                return True
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip() in {"dualnet", Path(self.binary).name[:15]}
        except OSError:
            return False

    def kill_all(self) -> None:
        for run in self.running:
            below = descendants(run.proc.pid)  # ranks may have left the launcher's process group
            for kill, target in [(os.killpg, run.proc.pid)] + [(os.kill, p) for p in below]:
                try:
                    kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    # ------------------------------------------------------------------ progress
    def counts(self) -> dict[str, int]:
        c = {k: 0 for k in ("finished", "failed", "stopped", "killed", "elsewhere", "skipped")}
        for r in self.ended:
            c[r.outcome] += 1
        return c

    def eta(self, now: float) -> str:
        if not self.durations:
            return "?"
        mean = sum(self.durations) / len(self.durations)
        left = 0 if self.stop_sig else len(self.pending)
        work = left * mean + sum(max(mean - (now - r.started), 0.0) for r in self.running)
        par = min(self.jobs, left + len(self.running))
        return fmt_seconds(work / par if par else 0.0)

    def progress(self) -> str:
        now = time.monotonic()
        c = self.counts()
        extra = "".join(
            f", {c[k]} {label}" for k, label in (("stopped", "stopped"), ("killed", "killed"),
                                                 ("elsewhere", "elsewhere"), ("skipped", "skipped"))
            if c[k]
        )
        return (f"{c['finished']} done, {len(self.running)} running, {c['failed']} failed, "
                f"{len(self.pending)} left{extra} | elapsed {fmt_seconds(now - self.t0)} | ETA {self.eta(now)}")

    def say(self, text: str) -> None:
        """A line that stays (on a terminal: above the progress line)."""
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.write(f"sweep.py [{fmt_seconds(time.monotonic() - self.t0)}] {text}\n")
        self.drawn = 0.0
        self.draw()

    def event(self, run: LocalRun, what: str) -> None:
        if self.tty:
            # Only what needs attention stays on a terminal; the rest is in the progress line.
            if run.outcome in ("failed", "elsewhere", "killed"):
                self.say(f"{run.name}: {what}")
            else:
                self.drawn = 0.0
                self.draw()
        else:
            sys.stderr.write(f"sweep.py [{fmt_seconds(time.monotonic() - self.t0)}] {run.name}: {what} -- "
                             f"{self.progress()}\n")
            sys.stderr.flush()

    def draw(self) -> None:
        now = time.monotonic()
        if self.tty and now - self.drawn >= 1.0:
            sys.stderr.write("\r\x1b[K" + self.progress())
            sys.stderr.flush()
            self.drawn = now

    # ------------------------------------------------------------------ main loop
    def execute(self, todo: list[dict]) -> int:
        self.pending = [LocalRun(t) for t in todo]
        old = {s: signal.signal(s, self.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while True:
                self.handle_signals()
                while not self.stop_sig and self.pending and len(self.running) < self.jobs:
                    self.launch(self.pending.pop(0))
                if not self.running:
                    break
                for key, _ in self.sel.select(timeout=0.2):
                    self.read_stderr(key.data)
                for run in list(self.running):
                    if run.proc.poll() is not None:
                        self.reap(run)
                self.draw()
        finally:
            if self.running:  # only after an error in this loop: leave nothing behind
                self.kill_all()
                for run in self.running:
                    run.proc.wait()
            for s, h in old.items():
                signal.signal(s, h)
            if self.tty:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
        return self.report()

    def report(self) -> int:
        by = {k: [r for r in self.ended if r.outcome == k] for k in self.counts()}
        c = {k: len(v) for k, v in by.items()}
        total = len(self.sweep["tasks"])
        print(f"sweep {self.sweep['name']}: {c['finished']} run(s) finished, {c['failed']} failed, "
              f"{c['stopped'] + c['killed']} stopped, {c['elsewhere']} running elsewhere, "
              f"{len(self.pending)} not started, in {fmt_seconds(time.monotonic() - self.t0)} "
              f"({total} runs in the sweep)")
        status_cmd = shlex.join(["python3", sys.argv[0], "status", str(self.args.sweep_file),
                                 "--dir", str(self.sweep["dir"]), "--list"])
        if by["elsewhere"]:
            print("running elsewhere (another dualnet process writes them; not run here):")
            for r in by["elsewhere"]:
                print(f"  {r.name}")
            print(f"see how they end with: {status_cmd}")
        if by["failed"]:
            print("failed runs:")
            for r in by["failed"]:
                print(f"  {r.name}: exit status {r.rc}: {last_error_line(r.tail)}\n"
                      f"    log: {self.logs / (r.name + '.log')}")
        # Stopped although sweep.py was not: someone signalled that dualnet. Unfinished, so
        # the exit status says so, but resumable with the same command.
        halted = [] if self.stop_sig else by["stopped"]
        if halted:
            print("stopped at a checkpoint by a signal to dualnet itself (run the same command again to resume):")
            for r in halted:
                print(f"  {r.name}\n    log: {self.logs / (r.name + '.log')}")
        if self.stop_sig:
            again = shlex.join(["python3", sys.argv[0], *self.args.argv])
            name = signal.Signals(self.stop_sig).name
            if by["stopped"] or by["killed"]:
                print(f"stopped by {name}:")
                for r in by["stopped"]:
                    print(f"  {r.name}: checkpoint written")
                for r in by["killed"]:
                    later = "resumes from its last checkpoint" if run_state(str(r.dir)) == "resumable" \
                        else "no checkpoint yet: starts afresh"
                    print(f"  {r.name}: killed ({later})")
            print(f"{len(self.pending)} run(s) not started. Continue with:\n  {again}")
            return 128 + self.stop_sig
        return 1 if by["failed"] or halted else 0


def stamp(sep: str = "T") -> str:
    return datetime.datetime.now().isoformat(sep=sep, timespec="seconds")


def cmd_run(sweep: dict, args) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise SweepError(f"--jobs must be at least 1 (got {args.jobs})")
    if args.ranks < 1:
        raise SweepError(f"--ranks must be at least 1 (got {args.ranks})")
    jobs = args.jobs or max(1, usable_cores() // args.ranks)
    binary = args.bin or site_value("DUALNET_BIN")
    if "/" not in binary and shutil.which(binary):
        binary = shutil.which(binary)
    binary = os.path.abspath(binary)
    launcher = mpiexec_command(args.mpiexec) if args.ranks > 1 else []

    tasks = sweep["tasks"]
    states = {t["index"]: run_state(t["run_dir"]) for t in tasks}
    todo = [t for t in tasks if states[t["index"]] != "finished"]
    n = {s: sum(1 for v in states.values() if v == s) for s in ("finished", "resumable", "stale", "new")}
    total = len(tasks)
    if not todo:
        print(f"sweep {sweep['name']}: all {total} runs finished; nothing to run (skipped {total})")
        if not args.dry_run:
            write_manifest(sweep)
        return 0
    if not args.dry_run and not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise SweepError(f"dualnet binary {binary!r} is missing or not executable (pass --bin or set DUALNET_BIN)")
    ranks = f"{args.ranks} rank{'s' if args.ranks > 1 else ''} each"
    print(f"sweep {sweep['name']}: {total} runs: {n['finished']} finished (skipped), {n['resumable']} to resume, "
          f"{n['stale']} to restart (no checkpoint), {n['new']} new; up to {jobs} at once, {ranks}", flush=True)
    runner = LocalSweep(sweep, args, binary, launcher, jobs)
    if args.dry_run:
        for t in todo:
            run = LocalRun(t)
            print(f"  {run.name} ({states[t['index']]}): {shlex.join(runner.command(run, states[t['index']]))}")
        return 0
    hashed = write_manifest(sweep)
    runner.logs.mkdir(parents=True, exist_ok=True)
    print(f"logs: {runner.logs}/<run name>.log", flush=True)
    with (sweep["dir"] / "submissions.log").open("a") as f:
        f.write(f"{stamp()}\tlocal={socket.gethostname()}:{os.getpid()}\truns={compress([t['index'] for t in todo])}"
                f"\tmanifest={hashed.name}\n")
    return runner.execute(todo)


def main(argv: list[str]) -> int:
    # Everything after a lone "--" goes to sbatch.
    sbatch_extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, sbatch_extra = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(
        prog="sweep.py",
        description="Expand a dualnet sweep file and submit it as a Slurm array job, or run it here.",
        epilog="See the module docstring (head of jobs/sweep.py) and docs/cluster.md.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("expand", "write the manifest only"),
        ("submit", "write the manifest and submit the unfinished tasks"),
        ("run", "write the manifest and run the unfinished tasks on this machine (no Slurm)"),
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
        if name == "run":
            sp.add_argument("--jobs", "-j", type=int, help="at most N runs at once (default: cores // R)")
            sp.add_argument("--ranks", type=int, default=1, help="MPI ranks per run (default 1: no mpiexec)")
            sp.add_argument("--bin", help="the dualnet binary (default: $DUALNET_BIN or the site "
                            "setting, else <repo>/build/dualnet)")
            sp.add_argument("--mpiexec", help="launcher for R > 1, e.g. \"mpiexec --bind-to none\" "
                            "(default: $DUALNET_MPIEXEC, else mpiexec)")
            sp.add_argument("--dry-run", action="store_true", help="print the dualnet commands only")
        if name == "status":
            sp.add_argument("--list", action="store_true", help="list the unfinished runs")
    args = p.parse_args(argv)
    args.sbatch = sbatch_extra
    args.argv = argv  # `run` prints it back as the command that continues an interrupted sweep
    if sbatch_extra and args.command != "submit":
        p.error("sbatch options after -- only go with submit")
    try:
        sweep = load_sweep(args.sweep_file, args.dir)
        commands = {"expand": cmd_expand, "submit": cmd_submit, "run": cmd_run, "status": cmd_status}
        return commands[args.command](sweep, args)
    except SweepError as e:
        print(f"sweep.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C outside `run`'s own handling (which forwards it to the runs): no traceback.
        print("sweep.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
