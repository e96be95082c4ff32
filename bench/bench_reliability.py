"""What the reliability checks of issue #9 cost per image, beside what curating an image costs.

Each check runs on the real samples (../shared/realdata, else the demo faces) and is timed per
call, median of REPEATS passes; the curation of the same files (one process) gives the scale.

    .venv/bin/python bench/bench_reliability.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fer_data import params as params_mod
from fer_data.curate import curate, entry_file
from fer_data.faces import quality
from fer_data.imageio import decode_grey, header_size, read_file, read_grey
from fer_data.sources import get

REALDATA = Path(os.environ.get("FER_DATA_REALDATA") or Path(__file__).resolve().parents[1].parent / "shared/realdata")


def per_call_us(fn, items, repeats: int) -> float:
    """Median over REPEATS passes of the mean time of FN per item, in microseconds."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - start) / len(items) * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    root = REALDATA / "jaffe"
    if not root.is_dir():
        root = Path(tempfile.mkdtemp()) / "jaffe"
        from fer_data.demo import DemoFaces

        get("jaffe").write_demo(root, DemoFaces())
    files = sorted(root.glob("*.tiff"))
    blobs = [p.read_bytes() for p in files]
    greys = [read_grey(p)[0] for p in files]
    crops48 = [g[::5, ::5][:48, :48].copy() for g in greys]
    src = get("jaffe")(root)
    samples = [s for s in src if hasattr(s, "path")]
    checks = {
        "header_size (PNG/TIFF header, before decoding)": (header_size, blobs),
        "read_file (O_NONBLOCK open + fstat + read)": (lambda p: read_file(p, 1 << 30), files),
        "decode_grey (for scale: the decode itself)": (decode_grey, blobs),
        "Source.symlink_leak (realpath vs root)": (src.symlink_leak, files),
        "Source.boundary_reject (engine net, per sample)": (src.boundary_reject, samples),
        "entry_file (duplicate-entry key, per sample)": (lambda s: entry_file(root, s), samples),
        "quality.crop_problem on a 256x256 frame": (quality.crop_problem, greys),
        "quality.crop_problem on a 48x48 crop": (quality.crop_problem, crops48),
    }
    print(f"{len(files)} files from {root}; medians of {args.repeats} passes")
    for name, (fn, items) in checks.items():
        print(f"  {name:52s} {per_call_us(fn, items, args.repeats):9.1f} us")
    p = params_mod.resolve({"run": {"workers": 1}})
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for i in range(max(1, args.repeats // 2)):
            start = time.perf_counter()
            curate("jaffe", root, Path(tmp) / f"o{i}", p)
            runs.append((time.perf_counter() - start) / len(files) * 1e6)
    print(f"  {'whole curation, one process (for scale)':52s} {statistics.median(runs):9.1f} us")


if __name__ == "__main__":
    main()
