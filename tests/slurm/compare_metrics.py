"""Compare two dualnet metrics.h5 files dataset by dataset, byte for byte.

    python compare_metrics.py A.h5 B.h5 [--skip NAME ...]

Every dataset in either file (all groups) must exist in both, with the same dtype, shape and
raw bytes (so NaNs compare by bit pattern), except those whose last path component is
skipped (default: samples_per_s, the one timing-dependent dataset). Attributes are not
compared: h5diff cannot exclude samples_per_s because the epoch dimension scale's
REFERENCE_LIST attribute refers to it. Exit status: 0 identical, 1 different, 2 bad input.
"""

import argparse
import sys

import h5py
import numpy as np


def datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    out: dict[str, h5py.Dataset] = {}

    def add(name: str, obj: object) -> None:  # visititems stops at the first non-None return
        if isinstance(obj, h5py.Dataset):
            out[name] = obj

    f.visititems(add)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--skip", action="append", default=None, help="dataset name to skip (repeatable)")
    args = p.parse_args()
    skip = set(args.skip or ["samples_per_s"])
    try:
        fa, fb = h5py.File(args.a, "r"), h5py.File(args.b, "r")
    except OSError as e:
        print(f"compare_metrics: cannot open: {e}", file=sys.stderr)
        return 2
    with fa, fb:
        da, db = datasets(fa), datasets(fb)
        keep = lambda d: {k: v for k, v in d.items() if k.rsplit("/", 1)[-1] not in skip}  # noqa: E731
        da, db = keep(da), keep(db)
        bad = [f"only in {args.a}: {k}" for k in sorted(da.keys() - db.keys())]
        bad += [f"only in {args.b}: {k}" for k in sorted(db.keys() - da.keys())]
        for k in sorted(da.keys() & db.keys()):
            x, y = da[k], db[k]
            if x.dtype != y.dtype or x.shape != y.shape:
                bad.append(f"{k}: dtype/shape {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
                continue
            if np.asarray(x[()]).tobytes() != np.asarray(y[()]).tobytes():
                bad.append(f"{k}: values differ")
    if not da:
        print("compare_metrics: no datasets to compare", file=sys.stderr)
        return 2
    if bad:
        print(f"compare_metrics: {len(bad)} of {len(da.keys() | db.keys())} datasets differ:", file=sys.stderr)
        for line in bad:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"compare_metrics: {len(da)} datasets bit-identical (skipped: {', '.join(sorted(skip))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
