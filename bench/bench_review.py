#!/usr/bin/env python3
"""Label review: detection of planted label noise on real faces, and cost against rows.

    .venv/bin/python bench/bench_review.py detect --data ckplus48 --model hog_logreg landmark_hog_logreg --seeds 7
    .venv/bin/python bench/bench_review.py detect --data fer2013 --model hog_logreg landmark_hog_logreg --seeds 3
    .venv/bin/python bench/bench_review.py detect --data ckplus48 --model five_layer --epochs 10 --seeds 1 --rates 0.05
    .venv/bin/python bench/bench_review.py scale
    .venv/bin/python bench/bench_review.py sweep

detect: the real samples of ../shared/realdata (FER_DATA_REALDATA overrides; --data ckplus48, fer2013,
ckplus, jaffe or several joined by "+") curated by the pipeline (fer_data.curate: aligned faces, 68
landmarks, embeddings; tests/review_faces.curated), written as a corpus whose train split holds
them all (leak groups: the subject, FER2013 the file), labels flipped at each rate, uniformly or to a
confusable class (fear<->surprise, sadness<->neutral, anger<->disgust, happiness->surprise), then
`fer-data review`'s code (out-of-fold models through train.oof, confident learning) for each model,
on the same flips and folds. Reported per setting, median over seeds: the flagged set's
precision and recall, the precision along the ranking at the first point where recall reaches 0.6
(the issue's goal: >= 0.8 at 5 % noise), the ranking's AUC, and the out-of-fold accuracy against the
given (noisy) labels and against the true ones.
scale: confident learning's time and peak traced memory on synthetic probabilities as rows grow.
sweep: confident learning alone on synthetic probabilities of a model of known accuracy: how good the
out-of-fold model must be for the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import review_faces as rf  # noqa: E402

from fer_data.review.build import review  # noqa: E402
from fer_data.review.detect import find_issues  # noqa: E402
from train.data import CorpusError  # noqa: E402

REALDATA = Path(os.environ.get("FER_DATA_REALDATA", ROOT.parent / "shared" / "realdata"))
GOAL_RECALL = 0.6


def one(faces: tuple, model: str, rate: float, mode: str, seed: int, args, work: Path) -> dict:
    images, labels, ids, groups, columns = faces
    noisy, wrong = rf.flip_labels(labels, rate, mode, seed)
    corpus = rf.corpus_of(work / "corpus", images, noisy, ids, groups, **columns)
    model, _, person = model.partition(":")
    oof = {"folds": args.folds, "model": model, "epochs": args.epochs, "seed": seed, "cache_dir": str(work / "cache")}
    if person:
        oof["person_features"] = person
    start = time.perf_counter()
    summary = review(corpus, work / "out", {"review": {"oof": oof}})
    seconds = time.perf_counter() - start
    import pandas as pd

    issues = pd.read_parquet(work / "out" / "label_issues.parquet")
    flipped = dict(zip(ids, wrong))
    w = issues["locator"].map(flipped).to_numpy(bool)
    true = issues["locator"].map(dict(zip(ids, labels))).to_numpy()
    predicted = np.array([np.argmax(p) for p in issues["probs"]])
    flagged = issues["issue"].to_numpy(bool)
    tp = int((flagged & w).sum())
    return {
        "precision": tp / max(flagged.sum(), 1),
        "recall": tp / max(w.sum(), 1),
        **rf.ranking_scores(issues["rank"].to_numpy(), w, GOAL_RECALL),
        "oof_accuracy": summary["oof"]["accuracy"],
        "true_accuracy": float((predicted == true).mean()),
        "flips": int(w.sum()),
        "flagged": int(flagged.sum()),
        "seconds": seconds,
    }


def settings(faces: tuple, model: str, args, base: str) -> list[dict]:
    """One row per (rate, mode): medians over seeds of `one`'s scores."""
    rows = []
    for rate in args.rates:
        for mode in ("uniform", "confusable"):
            runs = []
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory(dir=base) as tmp:
                    runs.append(one(faces, model, rate, mode, seed, args, Path(tmp)))
            med = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
            per_seed = [round(r["precision_at_recall_0.6"], 2) for r in runs]
            rows.append({"data": args.data, "model": model, "rate": rate, "mode": mode, **med,
                         "precision_at_recall_0.6_per_seed": per_seed})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def detect(args) -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="fer-review-bench-") as base:
        faces = rf.curated(REALDATA, args.data, Path(base))
        for model in args.model:
            try:
                rows += settings(faces, model, args, base)
            except CorpusError as exc:  # e.g. landmark_logreg on rows kept unaligned: reported, not scored
                print(f"{model} not run on {args.data}: {exc}", flush=True)
    header = (
        "| data | model | noise | flips | flagged | precision | recall | precision @ recall 0.6 | AUC | OOF acc "
        "| acc (true) | s |"
    )
    print("\n" + header + "\n|" + "---|" * 12)
    for r in rows:
        print(f"| {r['data']} | {r['model']} | {r['rate']:.0%} {r['mode']} | {r['flips']} | {r['flagged']} | "
              f"{r['precision']:.2f} | {r['recall']:.2f} | {r['precision_at_recall_0.6']:.2f} | {r['auc']:.2f} | "
              f"{r['oof_accuracy']:.2f} | {r['true_accuracy']:.2f} | {r['seconds']:.1f} |")  # fmt: skip


def scale(args) -> None:
    print("| rows | classes | probs MB | seconds | peak traced MB | peak / probs |\n|---|---|---|---|---|---|")
    for n, k in ((10_000, 7), (100_000, 7), (1_000_000, 7), (200_000, 100)):
        rng = np.random.default_rng(0)
        probs = rng.dirichlet(np.ones(k) * 0.3, n).astype(np.float32)
        labels = rng.integers(0, k, n)
        tracemalloc.start()
        start = time.perf_counter()
        find_issues(probs, labels)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        mb = probs.nbytes / 1e6
        print(f"| {n:,} | {k} | {mb:.0f} | {seconds:.2f} | {peak:.0f} | {peak / mb:.1f} |", flush=True)


def sweep(args) -> None:
    """Confident learning alone, on synthetic probabilities of a model of known accuracy (no training)."""
    n, k = 20_000, 7
    print(
        "| model accuracy (true labels) | noise | flagged precision | flagged recall | precision @ recall 0.6 | AUC |"
    )
    print("|---|---|---|---|---|---|")
    for margin in (1.0, 2.0, 3.0, 4.0, 5.0):
        for rate in (0.05, 0.15):
            rng = np.random.default_rng(0)
            true = rng.integers(0, k, n)
            logits = rng.normal(size=(n, k))
            logits[np.arange(n), true] += margin
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            given = true.copy()
            at = rng.choice(n, int(rate * n), replace=False)
            given[at] = (given[at] + rng.integers(1, k, len(at))) % k
            wrong = given != true
            found = find_issues(probs, given)
            tp = (found.flagged & wrong).sum()
            r = rf.ranking_scores(found.rank, wrong, GOAL_RECALL)
            acc = (probs.argmax(1) == true).mean()
            print(f"| {acc:.2f} | {rate:.0%} | {tp / found.flagged.sum():.2f} | {tp / wrong.sum():.2f} | "
                  f"{r['precision_at_recall_0.6']:.2f} | {r['auc']:.2f} |", flush=True)  # fmt: skip


def _data(value: str) -> str:
    if not all(name in rf.CURATED for name in value.split("+")):
        raise argparse.ArgumentTypeError(f"{value}: names of {', '.join(rf.CURATED)} joined by +")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect")
    d.add_argument("--data", type=_data, default="ckplus48", help="ckplus48, fer2013, ckplus, jaffe or a+b")
    d.add_argument(
        "--model",
        nargs="+",
        default=["landmark_hog_logreg"],
        help="review.oof.model values; MODEL:raw|centred|both also sets review.oof.person_features",
    )
    d.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.15])
    d.add_argument("--seeds", type=int, default=3)
    d.add_argument("--folds", type=int, default=4)
    d.add_argument("--epochs", type=int, default=10)
    sub.add_parser("scale")
    sub.add_parser("sweep")
    args = ap.parse_args()
    {"detect": detect, "scale": scale, "sweep": sweep}[args.command](args)


if __name__ == "__main__":
    main()
