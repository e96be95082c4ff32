#!/usr/bin/env python3
"""The 128-d face encoder alone: dlib's one-face call vs fer_data.faces.embed's torch batches.

    .venv/bin/python bench/bench_embed.py --repeats 3

Same network, same chips, one process, one thread (torch.set_num_threads(1); dlib is single-
threaded on CPU): real JAFFE, CK+ and FER2013 faces from ../shared/realdata when present (else
the demo's LFW portraits), cut into 150x150 chips by dlib.get_face_chip from our 68 points.
Reported: median ms a face over repeats for dlib and for torch at batch sizes 1/16/64, the
speed-up, how far the descriptors are from dlib's, the cost of cutting a chip, peak memory,
and a projection for FER2013 (35,887 faces) and AffectNet (440,000 faces).

On a host without dlib and face_recognition_models (a GPU box with torch and numpy only) it
times torch alone on random chips with the cached .npz weights (FER_DATA_CACHE pointing at a
folder holding the .npz written on a machine that has dlib), on CUDA when there is one:

    FER_DATA_CACHE=DIR python bench/bench_embed.py --device auto --batches 1 16 64 256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("FER_DATA_REALDATA") or REPO.parent / "shared" / "realdata")
sys.path.insert(0, str(REPO))

#: The datasets the projection is for: FER2013's rows, and AffectNet's manually annotated images.
PROJECTIONS = {"FER2013": 35_887, "AffectNet": 440_000}


def have_dlib() -> bool:
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError:
        return False
    return True


def real_faces(per_set: int) -> tuple[dict[str, tuple[list[np.ndarray], np.ndarray]], str]:
    """{set name: (images, (n, 68, 2) points)} of real faces (or the demo's when realdata is absent)."""
    import dlib

    from fer_data.faces import landmarks
    from fer_data.imageio import read_image

    detector = dlib.get_frontal_face_detector()

    def detected(images: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        kept, boxes = [], []
        for im in images:
            dets = detector(im, 0)
            if dets:
                r = max(dets, key=lambda d: d.area())
                kept.append(im)
                boxes.append((r.left(), r.top(), r.right(), r.bottom()))
        return kept, landmarks.predict_many(kept, boxes)

    jaffe = sorted((REALDATA / "jaffe").glob("*.tiff"))
    ck = sorted((REALDATA / "ckplus" / "cohn-kanade-images").glob("*/*/*.png"))
    fer = sorted((REALDATA / "fer2013" / "images").rglob("*.jpg"))
    if not (jaffe and ck and fer):
        from fer_data.demo import DemoFaces

        demo = DemoFaces()
        return {"demo 256x256": detected([demo.portrait(i, 256) for i in range(min(per_set, len(demo)))])}, "demo"
    fer_images = [read_image(p)[0] for p in fer[:: max(1, len(fer) // per_set)][:per_set]]
    fer_points = landmarks.predict_many(fer_images, [(0, 0, 47, 47)] * len(fer_images))
    return {
        "FER2013 48x48": (fer_images, fer_points),
        "JAFFE 256x256": detected([read_image(p)[0] for p in jaffe[:per_set]]),
        "CK+ 640x490": detected([read_image(p)[0] for p in ck[:: max(1, len(ck) // per_set)][:per_set]]),
    }, "realdata"


def timed(fn, repeats: int, clock=time.process_time) -> float:
    """Median seconds of fn() over repeats (after one warm-up call).

    CPU time of this process by default: the machines this ran on are shared, and wall time
    there counts other people's work too (one thread, so CPU time is the work done). On a GPU
    the CPU waits, so wall time (time.perf_counter) is the figure.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def curation_cost(repeats: int) -> dict[str, dict[str, float]]:
    """CPU seconds of curating the demo's trees in one process with faces.embeddings off and on.

    The demo must stay fast: this is the whole per-row cost of the column (decoding in colour,
    chips, the encoder), measured the way curation pays it.
    """
    import tempfile

    from fer_data import params as params_mod
    from fer_data.curate import curate
    from fer_data.demo import DemoFaces
    from fer_data.sources import get

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("jaffe", "ckplus", "fer2013"):
            root = Path(tmp) / "raw" / name
            get(name).write_demo(root, DemoFaces())
            row = {}
            for flag in (False, True):
                p = params_mod.resolve({"run": {"workers": 1}, "faces": {"embeddings": flag}})
                sink = Path(tmp) / "out" / f"{name}-{flag}"
                row["on" if flag else "off"] = timed(lambda: curate(name, root, sink, p), repeats)
            row["rows"] = curate(name, root, Path(tmp) / "out" / "count", p)["curated"]
            out[name] = row
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--faces", type=int, default=64, help="faces timed per torch measurement")
    ap.add_argument("--dlib-faces", type=int, default=24, help="faces timed per dlib measurement")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: per-core figures)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--curate", action="store_true", help="also time demo curation with embeddings off / on")
    a = ap.parse_args()

    import torch

    from fer_data.faces import embed

    torch.set_num_threads(a.threads)
    device = embed.select_device(a.device)
    clock = time.perf_counter if device.startswith("cuda") or a.threads > 1 else time.process_time
    result: dict = {"device": device, "torch": torch.__version__, "threads": a.threads, "clock": clock.__name__}
    if device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(device)

    dlib_ok = have_dlib()
    if dlib_ok:
        sets, origin = real_faces(per_set=max(a.faces, a.dlib_faces) // 3 + 1)
        chips, chip_ms = [], {}
        for name, (images, points) in sets.items():
            start = time.process_time()
            cut = [embed.face_chip(im, p) for im, p in zip(images, points)]
            chip_ms[name] = (time.process_time() - start) / max(1, len(cut)) * 1000
            chips += cut
        chips = np.stack(chips)
        result |= {"faces": origin, "chip_ms": chip_ms, "sets": {k: len(v[0]) for k, v in sets.items()}}
    else:
        chips = np.random.default_rng(0).integers(0, 256, (a.faces, 150, 150, 3), dtype=np.uint8)
        result["faces"] = "random chips (no dlib here: timing only)"
    chips = np.resize(chips, (a.faces, *chips.shape[1:])) if len(chips) < a.faces else chips[: a.faces]

    result["rss_before_encoder_mb"] = peak_rss_mb()
    ours = {}
    for bs in a.batches:
        encoder = embed.FaceEncoder(device=device, batch_size=bs)
        n = max(bs, a.faces if bs > 1 else min(a.faces, 16))
        batch = np.resize(chips, (n, *chips.shape[1:]))
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        seconds = timed(lambda: encoder.encode(batch), a.repeats, clock)
        ours[bs] = {"ms_per_face": seconds / n * 1000, "faces_per_s": n / seconds, "rss_peak_mb": peak_rss_mb()}
        if device.startswith("cuda"):
            ours[bs]["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    result["torch_ms"] = ours

    if device != "cpu":  # the GPU against torch on CPU (which equals dlib: tests/test_faces_embed.py)
        gpu = embed.FaceEncoder(device=device, batch_size=16).encode(chips)
        cpu = embed.FaceEncoder(device="cpu", batch_size=16).encode(chips)
        cos = (gpu * cpu).sum(1) / (np.linalg.norm(gpu, axis=1) * np.linalg.norm(cpu, axis=1))
        result |= {"gpu_vs_cpu_min_cosine": float(cos.min()), "gpu_vs_cpu_max_abs_diff": float(np.abs(gpu - cpu).max())}
    if dlib_ok:
        sample = chips[: a.dlib_faces]
        seconds = timed(lambda: embed.dlib_descriptors(sample), a.repeats)
        dlib_ms = seconds / len(sample) * 1000
        theirs = embed.dlib_descriptors(chips)
        mine = embed.FaceEncoder(device=device, batch_size=16).encode(chips)
        cos = (mine * theirs).sum(1) / (np.linalg.norm(mine, axis=1) * np.linalg.norm(theirs, axis=1))
        result |= {
            "dlib_ms_per_face": dlib_ms,
            "speedup": {bs: dlib_ms / v["ms_per_face"] for bs, v in ours.items()},
            "min_cosine": float(cos.min()),
            "max_abs_diff": float(np.abs(mine - theirs).max()),
            "rss_peak_with_dlib_mb": peak_rss_mb(),
        }
    best = min(v["ms_per_face"] for v in ours.values())
    result["projection_hours"] = {
        name: {"torch": n * best / 3.6e6, **({"dlib": n * result["dlib_ms_per_face"] / 3.6e6} if dlib_ok else {})}
        for name, n in PROJECTIONS.items()
    }
    if a.curate and dlib_ok:
        result["curation_cpu_s"] = curation_cost(a.repeats)
    report(result)
    if a.json:
        a.json.write_text(json.dumps(result, indent=2, default=str) + "\n")


def report(r: dict) -> None:
    print(f"device {r['device']} {r.get('gpu', '')} | torch {r['torch']} | {r['threads']} thread(s) | {r['faces']}")
    print(f"times: median of repeats, {r['clock']} (process_time: CPU time, immune to other processes' load)")
    if "sets" in r:
        print("faces: " + ", ".join(f"{k} {v} ({r['chip_ms'][k]:.2f} ms a chip)" for k, v in r["sets"].items()))
    print(f"peak RSS before the encoder was built: {r['rss_before_encoder_mb']:.0f} MB (Python, torch, dlib, chips)")
    print("| encoder | batch | ms a face | faces/s | speed-up vs dlib | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    if "dlib_ms_per_face" in r:
        d = r["dlib_ms_per_face"]
        print(
            f"| dlib compute_face_descriptor | 1 | {d:.1f} | {1000 / d:.1f} | 1.0x | {r['rss_peak_with_dlib_mb']:.0f} |"
        )
    for bs, v in r["torch_ms"].items():
        speed = f"{r['speedup'][bs]:.1f}x" if "speedup" in r else "-"
        extra = f" (GPU {v['gpu_peak_mb']:.0f} MB)" if "gpu_peak_mb" in v else ""
        line = f"| fer_data torch | {bs} | {v['ms_per_face']:.2f} | {v['faces_per_s']:.0f} | {speed} |"
        print(f"{line} {v['rss_peak_mb']:.0f}{extra} |")
    if "gpu_vs_cpu_min_cosine" in r:
        print(f"GPU vs CPU: min cosine {r['gpu_vs_cpu_min_cosine']:.7f}, max |diff| {r['gpu_vs_cpu_max_abs_diff']:.2e}")
    if "min_cosine" in r:
        print(f"equality with dlib: min cosine {r['min_cosine']:.7f}, max |diff| {r['max_abs_diff']:.2e}")
    for name, c in r.get("curation_cpu_s", {}).items():
        extra_ms = (c["on"] - c["off"]) / max(1, c["rows"]) * 1000
        print(
            f"demo curation {name}: {c['rows']} rows, {c['off']:.2f} s CPU without embeddings, {c['on']:.2f} s with "
            f"(+{extra_ms:.1f} ms a row)"
        )
    for name, hours in r["projection_hours"].items():
        parts = ", ".join(f"{k} {h:.2f} h" for k, h in hours.items())
        print(f"projection {name} ({PROJECTIONS[name]:,} faces, one core / one device): {parts}")


if __name__ == "__main__":
    main()
