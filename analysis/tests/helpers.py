"""Direct reads of a run's HDF5 datasets, the independent side of every comparison, and
copies of real runs edited into what older writers left."""

import re
import zlib
from pathlib import Path

import h5py
import numpy as np

from dualnet_analysis.sealed import seal

# /metrics datasets that format version 1 files do not have (docs/metrics-format.md#collapse).
NEW_IN_VERSION_2 = ("weight_change", "dead_fraction", "active_fraction", "output_rank1_gap")


def read(run_dir, name):
    with h5py.File(Path(run_dir) / "metrics.h5", "r", locking=False) as file:
        return file[name][()]


def read_attr(run_dir, name, key):
    with h5py.File(Path(run_dir) / "metrics.h5", "r", locking=False) as file:
        value = file[name].attrs[key]
    return value.decode() if isinstance(value, bytes) else value


def version_1_copy(run_dir, dest, seed=None):
    """A real (version 2) run turned into what a version 1 writer left: the old /hltm names,
    no long_name/units, none of the collapse datasets; optionally another seed. Resealed, as
    any edited copy must be, or the analysis refuses it as damaged."""
    dest.mkdir(parents=True)
    path = dest / "metrics.h5"
    path.write_bytes((Path(run_dir) / "metrics.h5").read_bytes())
    with h5py.File(path, "r+") as file:
        file.attrs["format_version"] = 1
        if seed is not None:
            file.attrs["config_toml"] = re.sub(r"(?m)^seed = \d+$", f"seed = {seed}", file.attrs["config_toml"])
        file.move("hltm/latent_level", "hltm/level")
        file.move("hltm/latent_ref_level", "hltm/ref_level")
        for name in NEW_IN_VERSION_2:
            data = file[f"metrics/{name}"]
            for dim in data.dims:  # no dangling references from the dimension scales
                for scale in list(dim.values()):
                    dim.detach_scale(scale)
            del file[f"metrics/{name}"]
        for group in ("metrics", "hltm"):
            for data in file[group].values():
                for key in ("long_name", "units"):
                    if key in data.attrs:
                        del data.attrs[key]
    seal(path)
    return dest


def node_levels(run_dir):
    """/hltm/latent_level (format version 2), or /hltm/level in version 1 files."""
    with h5py.File(Path(run_dir) / "metrics.h5", "r", locking=False) as file:
        return file["hltm/latent_level" if "hltm/latent_level" in file else "hltm/level"][()]


def level_means(run_dir, name, row):
    """Mean of a per-node metric over each level's nodes at one epoch row."""
    values, level = read(run_dir, name)[row], node_levels(run_dir)
    return np.array([values[level == lv].mean() for lv in range(level.max() + 1)])


def png_pixels(path):
    """The image's pixels, after checking the file is a PNG."""
    from matplotlib.image import imread

    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return imread(path)


def pdf_text(path):
    """The text shown in a matplotlib PDF: one string per BT..ET block, without a PDF library.

    matplotlib writes TrueType (Type 42) text as 2-byte codes in compressed content streams;
    a code is decoded through its font's ToUnicode map (ligatures such as "fi" have codes of
    their own), else as the UTF-16 code point it is.
    """
    data = Path(path).read_bytes()
    objects = {int(n): body for n, body in re.findall(rb"(\d+) 0 obj(.*?)endobj", data, re.S)}
    to_unicode = {}
    for name, ref in set(re.findall(rb"/(F\d+) (\d+) 0 R", data)):
        cmap = re.search(rb"/ToUnicode (\d+) 0 R", objects.get(int(ref), b""))
        if cmap:
            to_unicode[name] = _cmap(_stream(objects[int(cmap.group(1))]) or b"")
    blocks = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        content = _inflate(stream)
        for block in re.findall(rb"(?<!\S)BT\s(.*?)\sET(?!\S)", content or b"", re.S):
            text, font = [], {}
            for name, string in re.findall(rb"/(F\d+) [\d.]+ Tf|(\((?:\\.|[^\\)])*\))", block, re.S):
                if name:
                    font = to_unicode.get(name, {})
                    continue
                raw = re.sub(rb"\\([0-7]{1,3}|.)", _unescape, string[1:-1], flags=re.S)
                codes = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw) - 1, 2)]
                text += [font.get(code, chr(code)) for code in codes]
            blocks.append("".join(text))
    return blocks


def _inflate(stream):
    try:
        return zlib.decompress(stream)
    except zlib.error:
        return None


def _stream(body):
    match = re.search(rb"stream\r?\n(.*?)endstream", body, re.S)
    return _inflate(match.group(1)) if match else None


def _cmap(text):
    """{code: text} from a ToUnicode CMap's bfchar and bfrange entries."""
    def utf16(hexits):
        return bytes.fromhex(hexits.decode()).decode("utf-16-be")

    table = {}
    for section in re.findall(rb"beginbfchar(.*?)endbfchar", text, re.S):
        for src, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", section):
            table[int(src, 16)] = utf16(dst)
    for section in re.findall(rb"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*(\[[^\]]*\]|<[0-9a-fA-F]+>)", section):
            lo, hi = int(lo, 16), int(hi, 16)
            if dst.startswith(b"["):
                table.update(zip(range(lo, hi + 1), map(utf16, re.findall(rb"<([0-9a-fA-F]+)>", dst))))
            else:
                first = utf16(dst[1:-1])
                table.update((code, first[:-1] + chr(ord(first[-1]) + code - lo)) for code in range(lo, hi + 1))
    return table


_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(match):
    token = match.group(1)
    return bytes([int(token, 8) & 0xFF]) if token[:1].isdigit() else _ESCAPES.get(token, token)
