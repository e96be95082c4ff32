#!/usr/bin/env python3
"""The 68-point landmark fit alone: dlib's one-face call vs fer_data.faces.ert's batches.

    .venv/bin/python bench/bench_landmarks.py --repeats 5

Same model file, same faces, one process, one thread: real FER2013 48x48 crops (whole frame
as the box) and real JAFFE 256x256 faces (dlib HOG boxes) from ../shared/realdata when
present, else the demo's LFW crops and portraits. Reported per input: median ms a face over
repeats for dlib and for ert at several batch sizes, and how far ert's points are from
dlib's (dlib rounds to whole pixels: faces identical after rounding, mean and max deviation).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
sys.path.insert(0, str(REPO))


def inputs() -> dict[str, tuple[list[np.ndarray], list[tuple[int, int, int, int]], str]]:
    import cv2
    import dlib
    from PIL import Image

    from fer_data.demo import DemoFaces

    fer = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((REALDATA / "fer2013" / "images").rglob("*.jpg"))]
    jaffe = [np.asarray(Image.open(p).convert("L")) for p in sorted((REALDATA / "jaffe").glob("*.tiff"))]
    origin = "realdata"
    if not fer or not jaffe:
        demo = DemoFaces()
        fer = [demo.face(i, 48) for i in range(len(demo))]
        jaffe = [demo.portrait(i, 256) for i in range(len(demo))]
        origin = "demo faces"
    detector = dlib.get_frontal_face_detector()
    boxes, kept = [], []
    for im in jaffe:
        dets = detector(im, 0)
        if dets:
            r = dets[0]
            kept.append(im)
            boxes.append((r.left(), r.top(), r.right(), r.bottom()))
    return {"48x48 (FER2013)": (fer, [(0, 0, 47, 47)] * len(fer), origin), "256x256 (JAFFE)": (kept, boxes, origin)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    a = ap.parse_args()

    import dlib

    from fer_data.faces import ert

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition_models
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    ert.predict([np.zeros((8, 8), np.uint8)], [(0, 0, 7, 7)])  # model and compiled kernel loaded
    results = {}
    for name, (images, boxes, origin) in inputs().items():
        rects = [dlib.rectangle(*b) for b in boxes]
        # enough faces for the largest batch: cycle the sample
        reps = -(-max(a.batches) // len(images))
        images, rects, boxes = images * reps, rects * reps, boxes * reps

        def run_dlib() -> np.ndarray:
            return np.array([[(p.x, p.y) for p in predictor(im, r).parts()] for im, r in zip(images, rects)], float)

        def timed(fn) -> tuple[float, object]:
            times, out = [], None
            for _ in range(a.repeats):
                start = time.perf_counter()
                out = fn()
                times.append((time.perf_counter() - start) / len(images) * 1000)
            return statistics.median(times), out

        dlib_ms, theirs = timed(run_dlib)
        row = {"faces": len(images), "input": origin, "dlib_ms_per_face": round(dlib_ms, 3)}
        for b in a.batches:

            def run_ert(b=b) -> np.ndarray:
                return np.concatenate(
                    [ert.predict(images[i : i + b], boxes[i : i + b]) for i in range(0, len(images), b)]
                )

            ms, ours = timed(run_ert)
            row[f"ert_ms_per_face_batch_{b}"] = round(ms, 3)
        per_face = np.abs(np.rint(ours) - theirs).max(axis=(1, 2))
        row["speedup_at_largest_batch"] = round(dlib_ms / ms, 2)
        row["identical_after_rounding"] = round(float((per_face == 0).mean()), 3)
        row["mean_abs_px"] = round(float(np.abs(ours - theirs).mean()), 3)
        row["max_px"] = float(per_face.max())
        results[name] = row
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
