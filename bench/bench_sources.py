#!/usr/bin/env python3
"""Reading speed of the two large inputs, apart from face work.

    .venv/bin/python bench/bench_sources.py fer2013-csv --rows 35887 --repeats 3
    .venv/bin/python bench/bench_sources.py affwild2 --seconds 60 --size 1280x720 --stride 10 --repeats 3

fer2013-csv  a fer2013.csv of the real file's size (35,887 rows of 2,304 pixels, 8-9 rows in
             1000 broken the ways real copies are), read through the fer2013 source's shards
             exactly as curation reads it (planning + every row parsed, rejects included),
             in one process. Reports rows/s, the planning time and peak RSS, which must not
             grow with the rows (run two sizes).
affwild2     one annotated video (real LFW faces drifting, mp4v) of the given length and size,
             curated end to end with one worker (decode, frame stride, detection, landmarks,
             alignment): video frames per second (the annotated frames a core gets through,
             stride included) and curated frames per second, per core.
Each measurement runs in a fresh process; medians over repeats.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


# ---------------------------------------------------------------- inputs
def make_fer_csv(path: Path, rows: int) -> None:
    from bench_curate import _fer_faces

    faces, _ = _fer_faces()
    rng = np.random.default_rng(1)
    usage = ["Training"] * 8 + ["PublicTest", "PrivateTest"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(rows):
            pixels = " ".join(map(str, faces[i % len(faces)].ravel().tolist()))
            if i % 997 == 5:
                pixels = pixels.rsplit(" ", 1)[0]  # one value short
            elif i % 1499 == 7:
                pixels = pixels.replace(" ", " 300 ", 1)  # out of range (and one too many)
            w.writerow([int(rng.integers(0, 7)), pixels, usage[i % 10]])


def make_affwild2(root: Path, seconds: int, size: tuple[int, int]) -> None:
    from fer_data import labels
    from fer_data.demo import DemoFaces
    from fer_data.sources.affwild2 import write_annotation, write_video

    frames = seconds * 25
    face_px = size[1] // 4
    write_video(
        root / "videos" / "bench_001.mp4",
        "mp4v",
        DemoFaces(),
        frames,
        [(7, size[0] / 2, size[1] / 2, face_px)],
        size=size,
    )
    codes = [(i // 50) % 7 for i in range(frames)]
    write_annotation(
        root / "annotations" / "EXPR_Classification_Challenge" / "Train_Set" / "bench_001.txt",
        ",".join(labels.AFFWILD2),
        codes,
    )


# ---------------------------------------------------------------- measurements (child processes)
def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure_fer_csv(root: Path) -> dict:
    from fer_data import params, sources

    p = params.resolve({})
    src = sources.get("fer2013")(root, p.source("fer2013"))
    start = time.perf_counter()
    shards = src.shards(p.run.shard_size, min_shards=8)
    planned = time.perf_counter() - start
    rows = rejects = 0
    for shard in shards:
        for item in src.iter_shard(shard):
            rows += 1
            rejects += isinstance(item, sources.Reject)
    wall = time.perf_counter() - start
    return {"rows": rows, "rejects": rejects, "shards": len(shards), "plan_s": planned, "seconds": wall}


def measure_affwild2(root: Path, out: Path, stride: int) -> dict:
    from fer_data import params
    from fer_data.curate import curate

    p = params.resolve(
        {
            "run": {"workers": 1},
            "labels": {"target_set": "all8"},
            "sources": {"affwild2": {"root": str(root), "frame_stride": stride, "max_frames_per_video": 0}},
        }
    )
    start = time.perf_counter()
    m = curate("affwild2", root, out, p)
    wall = time.perf_counter() - start
    ann = next(root.rglob("bench_001.txt"))
    video_frames = len(ann.read_text().splitlines()) - 1
    return {
        "video_frames": video_frames,
        "read": m["read"],
        "curated": m["curated"],
        "seconds": wall,
        "rejected_by_reason": m["rejected_by_reason"],
    }


def child(argv: list[str]) -> None:
    kind, root, out, stride = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    r = measure_fer_csv(root) if kind == "fer2013-csv" else measure_affwild2(root, out, stride)
    r["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(r))


def _spawn(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise SystemExit(f"benchmark child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["fer2013-csv", "affwild2"])
    ap.add_argument("--rows", type=int, default=35887)
    ap.add_argument("--seconds", type=int, default=60, help="video length at 25 fps")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--stride", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=REPO / "build" / "bench")
    a = ap.parse_args()
    if a.kind == "fer2013-csv":
        root = a.work / f"fer2013-csv-{a.rows}"
        if not (root / "fer2013.csv").exists():
            make_fer_csv(root / "fer2013.csv", a.rows)
    else:
        w, h = map(int, a.size.split("x"))
        root = a.work / f"affwild2-{a.seconds}s-{a.size}"
        if not root.exists():
            make_affwild2(root, a.seconds, (w, h))
    runs = [_spawn(a.kind, str(root), str(a.work / f"out-{a.kind}"), str(a.stride)) for _ in range(a.repeats)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    if a.kind == "fer2013-csv":
        result = {
            "rows": runs[0]["rows"],
            "rejects": runs[0]["rejects"],
            "shards": runs[0]["shards"],
            "median_s": round(med("seconds"), 2),
            "rows_per_s": round(runs[0]["rows"] / med("seconds")),
            "plan_s": round(med("plan_s"), 2),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        }
    else:
        result = {
            "size": a.size,
            "stride": a.stride,
            "video_frames": runs[0]["video_frames"],
            "sampled": runs[0]["read"],
            "curated": runs[0]["curated"],
            "median_s": round(med("seconds"), 2),
            "video_fps_per_core": round(runs[0]["video_frames"] / med("seconds"), 1),
            "curated_fps_per_core": round(runs[0]["curated"] / med("seconds"), 1),
            "rejected_by_reason": runs[0]["rejected_by_reason"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        }
    result["runs_s"] = [round(r["seconds"], 2) for r in runs]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
