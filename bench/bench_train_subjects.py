#!/usr/bin/env python3
"""What a subject-disjoint split is worth: the five-layer CNN scored on unseen people vs on a split that leaks them.

    fer-data curate --source jaffe --root ../shared/realdata/jaffe --out /tmp/tb/curated/jaffe
    fer-data curate --source ckplus --root ../shared/realdata/ckplus --out /tmp/tb/curated/ckplus
    fer-data corpus --curated /tmp/tb/curated/jaffe --curated /tmp/tb/curated/ckplus --out /tmp/tb/corpus \
        --params P   # P: params.yaml with corpus.identities.cluster: false (subject ids are the identities)
    .venv/bin/python bench/bench_train_subjects.py --corpus /tmp/tb/corpus --folds 5

The corpus's rows (--rows kept: duplicates already dropped; --rows all: every curated row it read,
near-duplicate frames included, each with the leak group the corpus gave it) are cut into K folds
twice: by the corpus's leak groups (every person in one fold: what the corpus's splits guarantee) and by row (people in
several folds: what a random split does). For each fold, the model trains on the other folds (one of
them held out for validation: learning-rate plateau, early stopping, best epoch) and predicts the
fold, so every row is predicted once per scheme; accuracy and macro F1 are pooled over all rows.
Same rows, same model, same params and seeds: only the split differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from train.data import Corpus  # noqa: E402
from train.fit import fit  # noqa: E402
from train.metrics import confusion, summarize  # noqa: E402
from train.params import TrainParams, build  # noqa: E402
from train.synthetic import write_corpus  # noqa: E402

PARAMS = {
    "model": "five_layer",
    "epochs": 40,
    "batch_size": 32,
    "lr": 0.01,
    "lr_patience": 3,
    "early_stop_patience": 10,
}


def read_rows(corpus: Corpus) -> dict[str, np.ndarray]:
    tables = [pq.read_table(corpus.root / s["path"]) for s in corpus.manifest["shards"]]
    col = lambda name: np.concatenate([t.column(name).to_numpy(zero_copy_only=False) for t in tables])  # noqa: E731
    h, w = corpus.image["height"], corpus.image["width"]
    images = np.stack([np.frombuffer(b, np.uint8).reshape(h, w) for b in col("image")])
    return {
        "image": images,
        "label": col("label_index").astype(np.int64),
        "source": col("source").astype(str),
        "group": col("leak_group").astype(str),
        "sample_id": col("sample_id").astype(str),
    }


def read_all_rows(corpus: Corpus) -> dict[str, np.ndarray]:
    """Every curated row the corpus read, duplicates included, with the leak group the corpus gave it."""
    groups = pq.read_table(corpus.root / "groups.parquet", columns=["sample_id", "leak_group"]).to_pydict()
    group_of = dict(zip(groups["sample_id"], groups["leak_group"]))
    out = {k: [] for k in ("image", "label", "source", "group", "sample_id")}
    h, w = corpus.image["height"], corpus.image["width"]
    for name, info in sorted(corpus.manifest["sources"].items()):
        t = pq.read_table(Path(info["curated"]) / "curated.parquet", columns=["sample_id", "image", "label_index"])
        for sid, img, label in zip(*(t.column(c).to_pylist() for c in ("sample_id", "image", "label_index"))):
            out["image"].append(np.frombuffer(img, np.uint8).reshape(h, w))
            out["label"].append(label)
            out["source"].append(name)
            out["group"].append(group_of[sid])
            out["sample_id"].append(sid)
    return {k: np.stack(v) if k == "image" else np.array(v) for k, v in out.items()}


def grouped_folds(groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold per row; whole groups to the currently smallest fold, largest groups first (ties in seeded order)."""
    rng = np.random.default_rng(seed)
    names, counts = np.unique(groups, return_counts=True)
    order = sorted(rng.permutation(len(names)), key=lambda i: -counts[i])
    sizes, fold_of = np.zeros(k, int), {}
    for i in order:
        f = int(np.argmin(sizes))
        fold_of[names[i]] = f
        sizes[f] += counts[i]
    return np.array([fold_of[g] for g in groups])


def row_folds(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % k


def run_scheme(rows: dict, folds: np.ndarray, k: int, params: TrainParams, work: Path) -> dict:
    actual, predicted = [], []
    for f in range(k):
        split = np.where(folds == f, "test", np.where(folds == (f + 1) % k, "val", "train"))
        corpus = write_corpus(work / f"fold{f}", rows["image"], rows["label"], split, classes=CLASSES,
                              sources=rows["source"])  # fmt: skip
        fit(corpus, work / f"fold{f}-out", params)
        with open(work / f"fold{f}-out" / "plots" / "predictions_test.csv") as fh:
            for r in csv.DictReader(fh):
                actual.append(CLASSES.index(r["actual"]))
                predicted.append(CLASSES.index(r["predicted"]))
    s = summarize(confusion(np.array(actual), np.array(predicted), len(CLASSES)), CLASSES)
    return {"rows": s["rows"], "accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}


CLASSES: list[str] = []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--rows",
        choices=("kept", "all"),
        default="kept",
        help="kept: the corpus's rows (duplicates dropped); all: every curated row it read (sources.*.curated)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (a shared machine: 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Corpus.open(args.corpus)
    CLASSES[:] = corpus.classes
    rows = read_rows(corpus) if args.rows == "kept" else read_all_rows(corpus)
    people = len(set(rows["group"]))
    result = {
        "row_set": args.rows,
        "rows": len(rows["label"]),
        "leak_groups": people,
        "folds": args.folds,
        "params": PARAMS,
        "runs": [],
    }
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="bench-subjects-") as tmp:
            params = build(TrainParams, {**PARAMS, "seed": seed, "cache_dir": f"{tmp}/cache"}, "train")
            disjoint = run_scheme(
                rows, grouped_folds(rows["group"], args.folds, seed), args.folds, params, Path(tmp) / "g"
            )
            print(json.dumps({"seed": seed, "subject_disjoint": disjoint}), flush=True)
            leaky = run_scheme(
                rows, row_folds(len(rows["label"]), args.folds, seed), args.folds, params, Path(tmp) / "r"
            )
        result["runs"].append({"seed": seed, "subject_disjoint": disjoint, "leaky": leaky})
        print(json.dumps(result["runs"][-1]), flush=True)
    for scheme in ("subject_disjoint", "leaky"):
        for key in ("accuracy", "macro_f1"):
            values = [r[scheme][key] for r in result["runs"]]
            result[f"{scheme}_{key}"] = {
                "mean": round(float(np.mean(values)), 4),
                "min": min(values),
                "max": max(values),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
