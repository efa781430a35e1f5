#!/usr/bin/env python3
"""Fail when a hot kernel of the CUDA build uses local memory: a stack frame, spill stores or
spill loads in ptxas's report (issue 16: a tile indexed with a runtime bound is put in local
memory by nvcc, off-chip and slow).

cmake/build-cuda.sh compiles with -Xptxas -v, and its compiler launcher (cmake/ptxas-log.sh)
keeps each translation unit's report in OBJECT.ptxas.log. This script (CI runs it right after
that build) reads every such log under the build directory, demangles the kernels' names
(c++filt), maps them to the hot kernels below by the dualnet function whose lambda they run,
prints a table and exits 1 when

  * a hot kernel has a nonzero stack frame (or cumulative stack, with its callees), spill
    stores or spill loads, for any architecture compiled (sm_80, sm_90);
  * a hot kernel is not found for some architecture (renamed or moved: update HOT_KERNELS,
    never let it pass unchecked);
  * there is no report at all.

Usage:  python3 tests/gpu/check_spills.py [BUILD_DIR | LOG...]      (default BUILD_DIR: build-cuda)
        --all   also list every other kernel with a stack frame or spills (not checked)
docs/gpu.md ("No local memory in the hot kernels") has the numbers.
"""
import argparse
import pathlib
import re
import subprocess
import sys

# The hot kernels: (name in the table, the dualnet function whose KOKKOS_LAMBDA is the kernel).
# A kernel is matched by "<function>(" in its demangled name, so every kernel launched from
# that function is checked (there may be several, e.g. after fusing). With the three loss and
# update kernels, these are every kernel of the training step and of an evaluation chunk.
HOT_KERNELS = [
    ("forward", "dualnet::forward"),
    ("backward", "dualnet::backward"),
    ("weight_gradient", "dualnet::weight_gradient"),
    ("sample_views", "dualnet::sample_views"),
    ("jacobians", "dualnet::CovopStats::jacobians"),
    ("conn_sums", "dualnet::CovopStats::conn_sums"),
    ("cross_sums", "dualnet::CorrelationStats::cross_sums"),
    ("moment_sums", "dualnet::CorrelationStats::moment_sums"),
    ("pair_distances", "dualnet::pair_distances"),
    ("loss_gradient", "dualnet::loss_gradient"),
    ("update", "dualnet::update_step"),
]

# Local memory a hot kernel may use, in bytes per thread (stack frame and cumulative stack;
# spills are never allowed). None is needed today: keep it 0 unless a kernel truly cannot do
# without, and say why here.
ALLOWED_STACK_BYTES = {}

ENTRY = re.compile(r"^ptxas info\s*: Compiling entry function '([^']+)' for '(\w+)'")
PROPS = re.compile(r"^ptxas info\s*: Function properties for (\S+)")
FRAME = re.compile(r"^\s+(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"^ptxas info\s*: Used (\d+) registers")
CUMULATIVE = re.compile(r"(\d+) bytes cumulative stack size")


def parse(paths):
    """Entry kernels of the reports: dicts with name, arch, log, regs, stack, cumulative, st, ld."""
    kernels = []
    for path in paths:
        cur = None
        props_for = None
        for line in path.read_text(errors="replace").splitlines():
            m = ENTRY.match(line)
            if m:
                cur = dict(name=m.group(1), arch=m.group(2), log=path, regs=None, stack=None, cumulative=0, st=None,
                           ld=None)
                kernels.append(cur)
                props_for = None
                continue
            m = PROPS.match(line)
            if m:
                props_for = m.group(1)
                continue
            m = FRAME.match(line)
            if m and cur is not None and props_for == cur["name"]:
                cur["stack"], cur["st"], cur["ld"] = (int(g) for g in m.groups())
                continue
            m = USED.match(line)
            if m and cur is not None:
                cur["regs"] = int(m.group(1))
                c = CUMULATIVE.search(line)
                cur["cumulative"] = int(c.group(1)) if c else 0
                cur = None
    return kernels


def demangle(names):
    if not names:
        return {}
    out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True, text=True, check=True)
    return dict(zip(names, out.stdout.splitlines()))


def kernel_of(demangled):
    """The function whose lambda (or functor) a Kokkos kernel runs, for messages."""
    m = re.search(r"Parallel(?:For|Reduce|Scan)<(.*)", demangled)
    name = re.sub(r"_INTERNAL_\w+::", "", m.group(1) if m else demangled).replace("(anonymous namespace)", "{anon}")
    return name.split("(")[0] if "(" in name else name[:160]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", default=["build-cuda"], help="build directory or .ptxas.log files")
    ap.add_argument("--all", action="store_true", help="also list the other kernels with local memory")
    args = ap.parse_args()

    logs = []
    for p in map(pathlib.Path, args.paths):
        if not p.exists():
            ap.error(f"{p}: no such build directory or log")
        logs += sorted(p.rglob("*.ptxas.log")) if p.is_dir() else [p]
    # A log older than its object was left by a compile without the report (a build configured
    # with DUALNET_CUDA_PTXAS_LOG=0, or before cmake/build-cuda.sh wrote reports): it may be stale.
    stale = [log for log in logs
             if pathlib.Path(str(log)[:-len(".ptxas.log")]).exists()
             and pathlib.Path(str(log)[:-len(".ptxas.log")]).stat().st_mtime > log.stat().st_mtime + 1]
    if stale:
        print(f"check_spills: {len(stale)} ptxas logs are older than their objects, e.g. {stale[0]}: "
              "rebuild the CUDA build from scratch with cmake/build-cuda.sh", file=sys.stderr)
        return 1
    kernels = [k for k in parse(logs) if k["stack"] is not None]
    if not kernels:
        print(f"check_spills: no ptxas report in {' '.join(args.paths)} ({len(logs)} .ptxas.log files): "
              "build with cmake/build-cuda.sh, from scratch if the build directory predates its ptxas logs",
              file=sys.stderr)
        return 1
    names = demangle(sorted({k["name"] for k in kernels}))
    arches = sorted({k["arch"] for k in kernels})

    failures = []
    rows = []
    hot_names = set()
    for label, func in HOT_KERNELS:
        pattern = re.compile(re.escape(func) + r"\(")
        allowed = ALLOWED_STACK_BYTES.get(label, 0)
        for arch in arches:
            found = [k for k in kernels if k["arch"] == arch and pattern.search(names[k["name"]])]
            if not found:
                rows.append((label, arch, "-", "-", "-", "-", "-", "NOT FOUND"))
                failures.append(f"{label} ({func}) has no kernel for {arch}: renamed or moved (update HOT_KERNELS "
                                f"in {pathlib.Path(__file__).name}), or its object was compiled without the report")
                continue
            for i, k in enumerate(found):
                hot_names.add(k["name"])
                stack = max(k["stack"], k["cumulative"])
                bad = stack > allowed or k["st"] or k["ld"]
                rows.append((label if len(found) == 1 else f"{label}#{i + 1}", arch, len(found), k["regs"],
                             k["stack"], k["st"], k["ld"], "LOCAL MEMORY" if bad else "ok"))
                if bad:
                    failures.append(f"{label} ({arch}, {k['log'].name}): {k['stack']} bytes stack frame "
                                    f"({k['cumulative']} cumulative), {k['st']} bytes spill stores, "
                                    f"{k['ld']} bytes spill loads in {kernel_of(names[k['name']])}")

    head = ("kernel", "arch", "kernels", "registers", "stack frame", "spill stores", "spill loads", "")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(f"check_spills: {len(kernels)} kernels in {len(logs)} ptxas logs; hot kernels:")
    for r in [head] + rows:
        print("  " + "  ".join(str(v).ljust(w) if i in (0, 1, 7) else str(v).rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths))))
    others = [k for k in kernels if k["name"] not in hot_names and max(k["stack"], k["st"], k["ld"], k["cumulative"])]
    print(f"  other kernels with local memory (not checked): {len(others)}")
    if args.all:
        for k in sorted(others, key=lambda k: (-k["stack"], k["arch"])):
            print(f"    {k['arch']} stack {k['stack']} spill {k['st']}/{k['ld']} regs {k['regs']}: "
                  f"{kernel_of(names[k['name']])}")
    if failures:
        print("check_spills: FAILED:", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    print("check_spills: ok, no hot kernel uses local memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
