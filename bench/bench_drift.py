#!/usr/bin/env python3
"""Drift battery: false-alarm rate, power against four shifts, and the embedding test's time and memory.

    .venv/bin/python bench/bench_drift.py --realdata ../shared/realdata --null 1000 --power 200
    .venv/bin/python bench/bench_drift.py --mmd-only --reference 50000 --batch 5000 --permutations 100

The population: real faces. The real dataset samples (JAFFE, CK+, CK+48, FER2013 images) are
curated once with the project's engine (cached under --work); their curated rows (quality
features, labels, aligned faces) are the population. A reference corpus and each batch are
drawn from it by a smoothed bootstrap: rows resampled with replacement, continuous features
given a little Gaussian noise (0.1 of the feature's standard deviation) so that ~1,000 real rows
stand for a continuous population instead of creating ties that only resampling makes.
Integer features (face_size) keep their values (real ties: KS is conservative on them).

* False-alarm rate (embeddings: a --embedding-sample reference sample, exact MMD): --null batches of --batch-size faces from the population, each checked by the
  full battery (`fer_data.drift.checks.battery`: chi-square + PSI on labels, KS + PSI on the seven
  quality features, Holm over all) against a profile of a --reference-rows reference.
* Power: the same with batches from a shifted population: brightness -20 % (grey levels x 0.8),
  Gaussian blur sigma 1, JPEG quality 30 (each applied to the real aligned 48x48 faces, whose
  brightness / contrast / sharpness are recomputed with `fer_data.faces.quality.image_metrics`;
  geometry and detector score unchanged), and a 10-point class-mix shift (10 percentage points of
  the largest class moved to the second largest: the two biggest shares make the smallest PSI).
* Embedding test: `fer_data.drift.stats.mmd_permutation_test` on a 50,000 x 128 reference vs a
  5,000 x 128 batch with 100 permutations, torch on all cores, in a fresh process (peak RSS).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Real samples curated into the population: (source, folder under realdata, source params).
POOL = (
    ("jaffe", "jaffe", {}),
    ("ckplus", "ckplus", {}),
    ("folder", "ckplus48/CK+48", {"precropped": True, "subject_pattern": r"^(?P<subject>S\d+)_"}),
    ("fer2013", "fer2013", {"layout": "folders", "images_subdir": "images"}),
)
#: Smoothed bootstrap: noise of this share of a feature's standard deviation.
JITTER = 0.1
INTEGER_FEATURES = ("face_size",)


def curate_pool(realdata: Path, work: Path) -> dict:
    """The curated real rows (features, labels, aligned faces), cached in WORK/pool.npz."""
    cache = work / "pool.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    import pyarrow.dataset as ds

    from fer_data import params as params_mod
    from fer_data.curate import curate
    from fer_data.drift.config import DEFAULT_FEATURES

    parts = []
    for source, folder, sp in POOL:
        p = params_mod.resolve({"sources": {source: sp}, "run": {"workers": 2}})
        curate(source, realdata / folder, work / "curated" / source, p)
        t = ds.dataset(str(work / "curated" / source / "curated.parquet")).to_table()
        cols = [*DEFAULT_FEATURES, "label", "image", "width", "locator", "landmarks_original"]
        parts += [
            r | {"root": realdata / folder}
            for r in t.select(cols).to_pylist()
            if r["width"] == 48 and r["landmarks_original"]
        ]
    pool = {f: np.array([np.nan if r[f] is None else r[f] for r in parts], float) for f in DEFAULT_FEATURES}
    pool["label"] = np.array([r["label"] for r in parts])
    pool["image"] = np.stack([np.frombuffer(r["image"], np.uint8).reshape(48, 48) for r in parts])
    pool["chip"] = np.stack([_chip(r) for r in parts])
    pool["emb"] = embed(pool["chip"])
    np.savez(cache, **pool)
    return pool


def _chip(row: dict) -> np.ndarray:
    """dlib's 150x150 chip of the face from its original image (what the encoder embeds)."""
    from fer_data.faces.embed import face_chip
    from fer_data.imageio import read_image

    path = row["root"] / row["locator"]
    if not path.exists():
        path = row["root"] / "images" / row["locator"]  # fer2013's image variant lives in images/
    grey, rgb, _ = read_image(path, colour=True)
    return face_chip(grey if rgb is None else rgb, np.asarray(row["landmarks_original"]).reshape(68, 2))


def embed(chips: np.ndarray) -> np.ndarray:
    from fer_data.faces.embed import FaceEncoder

    return FaceEncoder("cpu").encode(chips)


def shifted(pool: dict, kind: str, work: Path) -> dict:
    """The population after a shift of the aligned faces (image metrics recomputed), or of the class mix."""
    from fer_data.faces.quality import image_metrics

    out = dict(pool)
    if kind == "class_mix":
        return out  # drawn with other class weights, see draw()
    cache = work / f"shift-{kind}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return out | {k: z[k] for k in z.files}
    metrics = [image_metrics(apply_shift(img, kind, 1.0)) for img in pool["image"]]
    for key in ("brightness", "contrast", "sharpness"):
        out[key] = np.array([m[key] for m in metrics])
    # The chip shows the face ~3x larger than the 48x48 aligned face: the same blur in face terms.
    out["emb"] = embed(np.stack([apply_shift(c, kind, CHIP_SCALE) for c in pool["chip"]]))
    np.savez(cache, **{k: out[k] for k in ("brightness", "contrast", "sharpness", "emb")})
    return out


#: Face size in dlib's 150x150 chip over that in the 48x48 aligned face (eye distance ~57 vs ~19 px).
CHIP_SCALE = 3.0


def apply_shift(img: np.ndarray, kind: str, scale: float) -> np.ndarray:
    """One face (grey or RGB uint8) after a shift; blur sigma in units of the 48x48 aligned face."""
    import cv2

    if kind == "brightness_-20%":
        return np.clip(img.astype(np.float32) * 0.8 + 0.5, 0, 255).astype(np.uint8)
    if kind == "blur_sigma_1":
        return cv2.GaussianBlur(img, (0, 0), 1.0 * scale)
    if kind == "jpeg_q30":
        _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 30])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    raise ValueError(kind)


def class_weights(pool: dict, shift_points: float) -> np.ndarray:
    """Row weights that move SHIFT_POINTS of the largest class's share to the second largest class."""
    labels, counts = np.unique(pool["label"], return_counts=True)
    share = counts / counts.sum()
    order = np.argsort(share)[::-1]
    target = share.copy()
    target[order[0]] -= shift_points
    target[order[1]] += shift_points
    per_label = dict(zip(labels, target / share, strict=True))
    w = np.array([per_label[lab] for lab in pool["label"]])
    return w / w.sum()


def draw(pool: dict, n: int, rng: np.random.Generator, features, weights: np.ndarray | None = None) -> dict:
    """N rows of the population (smoothed bootstrap)."""
    idx = rng.choice(len(pool["label"]), n, replace=True, p=weights)
    out = {"label": pool["label"][idx], "emb": pool["emb"][idx]}
    for f in features:
        v = pool[f][idx].copy()
        if f not in INTEGER_FEATURES:
            sd = np.nanstd(pool[f])
            v += rng.normal(0, JITTER * sd, n)
        out[f] = v
    return out


def make_profile(rows: dict, features, cfg, classes, rng):
    from fer_data.drift.profile import Profile, profile_feature

    counts = {c: int((rows["label"] == c).sum()) for c in classes}
    feats = {f: profile_feature(f, rows[f], cfg.profile, rng) for f in features}
    sample = rng.choice(len(rows["emb"]), cfg.profile.embedding_sample, replace=False)
    return Profile("bench", len(rows["label"]), list(classes), counts, feats, embeddings=rows["emb"][sample])


def make_batch(rows: dict, features):
    from fer_data.drift.ingest import Batch

    n = len(rows["label"])
    return Batch(
        "bench",
        Path("."),
        {f: rows[f] for f in features},
        list(rows["label"]),
        [str(i) for i in range(n)],
        rows["emb"],
        read=n,
        searched=n,
        found=n,
    )


def battery_rate(pool: dict, profile, cfg, n_batches: int, size: int, rng, weights=None) -> tuple[float, dict]:
    """Share of batches the battery fails, and how often each check failed."""
    from fer_data.drift.checks import battery

    failed, per_check = 0, {}
    for _ in range(n_batches):
        checks = battery(profile, make_batch(draw(pool, size, rng, cfg.features, weights), cfg.features), cfg)
        bad = [c.name for c in checks if c.verdict == "fail"]
        failed += bool(bad)
        for name in bad:
            per_check[name] = per_check.get(name, 0) + 1
    return failed / n_batches, per_check


def statistical(args) -> dict:
    from fer_data.drift import config
    from fer_data.labels import target_set

    cfg = config.parse({"drift": {"profile": {"embedding_sample": args.embedding_sample}}})
    pool = curate_pool(args.realdata, args.work)
    classes = target_set("fer2013_7").classes
    rng = np.random.default_rng(args.seed)
    ref_rows = draw(pool, args.reference_rows, rng, cfg.features)
    profile = make_profile(ref_rows, cfg.features, cfg, classes, rng)
    labels, counts = np.unique(pool["label"], return_counts=True)
    out = {
        "population_rows": len(pool["label"]),
        "population_classes": dict(zip(labels.tolist(), counts.tolist(), strict=True)),
        "reference_rows": args.reference_rows,
        "batch_size": args.batch_size,
        "alpha": cfg.alpha,
        "embedding_sample": args.embedding_sample,
    }
    t = time.perf_counter()
    rate, per = battery_rate(pool, profile, cfg, args.null, args.batch_size, rng)
    out["null"] = {"batches": args.null, "false_alarm_rate": rate, "by_check": per}
    out["seconds_per_battery"] = (time.perf_counter() - t) / args.null
    print(json.dumps(out["null"]), flush=True)
    out["power"] = {"embedding_test": not args.power_without_embeddings}
    if args.power_without_embeddings:
        cfg = cfg.model_copy(update={"embedding": cfg.embedding.model_copy(update={"enabled": False})})
    for kind in ("brightness_-20%", "blur_sigma_1", "jpeg_q30", "class_mix"):
        pop = shifted(pool, kind, args.work)
        weights = class_weights(pool, 0.10) if kind == "class_mix" else None
        rate, per = battery_rate(pop, profile, cfg, args.power, args.batch_size, rng, weights)
        out["power"][kind] = {"batches": args.power, "power": rate, "by_check": per}
        print(kind, json.dumps(out["power"][kind]), flush=True)
    return out


def mmd_timing(args) -> dict:
    """One MMD permutation test in this (fresh) process: wall time and peak RSS."""
    import torch

    from fer_data.drift.stats import mmd_permutation_test, mmd_random_features_test

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(args.reference, 128)).astype(np.float32)
    batch = rng.normal(size=(args.batch, 128)).astype(np.float32)
    base = _peak_rss_mb()
    cpu0, t = time.process_time(), time.perf_counter()
    if args.method == "exact":
        res = mmd_permutation_test(ref, batch, args.permutations, args.chunk_rows)
    else:
        res = mmd_random_features_test(ref, batch, args.permutations, 2048, args.chunk_rows)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu0
    peak = _peak_rss_mb()
    return {
        "method": args.method,
        "cpu_seconds": round(cpu, 2),
        "reference": args.reference,
        "batch": args.batch,
        "permutations": args.permutations,
        "chunk_rows": args.chunk_rows,
        "torch_threads": torch.get_num_threads(),
        "seconds": round(wall, 2),
        "p_value": res.p_value,
        "rss_before_mb": round(base),
        "peak_rss_mb": round(peak),
        "inputs_mb": round((ref.nbytes + batch.nbytes) / 2**20),
    }


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over an exec
    from the forking parent, which here holds the whole pool of faces."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared" / "realdata")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fer-data-bench-drift"))
    ap.add_argument("--null", type=int, default=1000)
    ap.add_argument("--power", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--reference-rows", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=0)
    # The profile's embedding sample (default 5,000 in params): 2,000 here keeps 1,000+ exact MMD
    # permutation tests affordable on 2 shared cores; the test's level does not depend on it.
    ap.add_argument("--embedding-sample", type=int, default=2000)
    # Power batteries without the embedding test (it can only add failures): 4x200 exact MMD tests are
    # ~an hour on 2 cores shared with other work.
    ap.add_argument("--power-without-embeddings", action="store_true")
    ap.add_argument("--mmd-only", action="store_true")
    ap.add_argument("--reference", type=int, default=50000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--permutations", type=int, default=100)
    ap.add_argument("--chunk-rows", type=int, default=4096)
    ap.add_argument("--method", choices=["exact", "random_features"], default="exact")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.mmd_only:
        print(json.dumps(mmd_timing(args)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    out = statistical(args)
    out["mmd"] = {}
    for method in ("exact", "random_features"):
        runs = []
        for _ in range(args.repeats):  # each in a fresh process, so its peak RSS is its own
            cmd = [sys.executable, __file__, "--mmd-only", "--method", method, "--reference", str(args.reference)]
            cmd += ["--batch", str(args.batch), "--permutations", str(args.permutations)]
            cmd += ["--chunk-rows", str(args.chunk_rows)]
            runs.append(json.loads(subprocess.check_output(cmd, text=True).strip().splitlines()[-1]))
            print("mmd", json.dumps(runs[-1]), flush=True)
        if runs:
            out["mmd"][method] = {"runs": runs, "median_seconds": float(np.median([r["seconds"] for r in runs]))}
    (args.work / "result.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
