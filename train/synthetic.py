"""Corpora in `fer-data corpus`'s layout written from arrays, and generated faces to fill them.

For tests (which pass real faces from fer_data.demo) and for the GPU check (bench/gpu_train_check.py),
which runs on a host with this repository and a stock PyTorch image only, where neither curated data
nor the curation stack exists. The layout is the shared contract: manifest.json + shards/<split>/part-*.parquet.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FER2013_7 = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
CANONICAL = ["neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise"]


def synthetic_faces(n: int, size: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size) uint8 cartoon faces whose mouth curve and brow tilt depend on the label, and the labels.

    Enough structure for a model to learn in a few epochs; noise and jitter so it has to generalise.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size), np.uint8)
    for i, label in enumerate(labels):
        cx, cy = 0.5 + rng.normal(0, 0.03), 0.5 + rng.normal(0, 0.03)
        face = ((xx - cx) / 0.38) ** 2 + ((yy - cy) / 0.46) ** 2 < 1
        img = np.where(face, 170.0, 60.0) + rng.normal(0, 12, (size, size))
        for ex in (cx - 0.15, cx + 0.15):
            img[(xx - ex) ** 2 + (yy - cy + 0.1) ** 2 < 0.003] = 30
        curve = (label / max(n_classes - 1, 1) - 0.5) * 0.5  # mouth from frown to smile
        mouth = np.abs(yy - (cy + 0.2 + curve * ((xx - cx) / 0.15) ** 2 - curve * 0.5)) < 0.025
        img[mouth & (np.abs(xx - cx) < 0.15)] = 40
        tilt = (label % 3 - 1) * 0.08  # brows
        brow = np.abs(yy - (cy - 0.2 + tilt * (xx - cx) * np.sign(xx - cx))) < 0.015
        img[brow & (np.abs(np.abs(xx - cx) - 0.15) < 0.07)] = 35
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out, labels


def _class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse frequency, 1.0 on average over the rows (the corpus's weighting)."""
    return np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_corpus(
    out: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    splits: np.ndarray,
    *,
    classes: list[str] = FER2013_7,
    sources: np.ndarray | None = None,
    subjects: np.ndarray | None = None,
    votes: np.ndarray | None = None,
    columns: dict[str, list] | None = None,
    rows_per_shard: int = 4096,
    row_group_size: int = 1024,
) -> Path:
    """Write a corpus folder: one or more shards per split (in row order) and a manifest with checksums.

    images (N, H, W) uint8; labels (N,) indices into classes; splits (N,) of train/val/test;
    votes (N, 8) over CANONICAL (NaN rows = none) for soft labels; columns: more per-row values
    ({name: N values}, e.g. leak_group or embedding), replacing a generated column of that name.
    """
    out = Path(out)
    n, h, w = images.shape
    sources = np.asarray(sources if sources is not None else ["synthetic"] * n)
    manifest_shards, split_info = [], {}
    for split in ("train", "val", "test"):
        idx = np.flatnonzero(np.asarray(splits) == split)
        counts = np.bincount(labels[idx], minlength=len(classes))
        weights = _class_weights(counts)
        split_info[split] = {
            "rows": len(idx),
            "class_counts": {c: int(k) for c, k in zip(classes, counts)},
            "class_weights": {c: round(float(x), 6) for c, x in zip(classes, weights)},
        }
        for part, start in enumerate(range(0, len(idx), rows_per_shard)):
            rows = idx[start : start + rows_per_shard]
            rel = f"shards/{split}/part-{part:05d}.parquet"
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            table = _table(images, labels, rows, split, classes, sources, subjects, votes, weights)
            for name, values in (columns or {}).items():
                column = pa.array([values[i] for i in rows])
                table = table.drop([name]) if name in table.column_names else table
                table = table.append_column(name, column)
            pq.write_table(table, path, row_group_size=row_group_size)
            manifest_shards.append(
                {
                    "path": rel,
                    "split": split,
                    "rows": len(rows),
                    "bytes": path.stat().st_size,
                    "sha256": _sha256(path),
                    "row_groups": pq.ParquetFile(path).num_row_groups,
                    "class_counts": {
                        c: int(k) for c, k in zip(classes, np.bincount(labels[rows], minlength=len(classes)))
                    },
                }
            )
    manifest = {
        "kind": "fer-data-corpus",
        "corpus_version": "1",
        "curated_schema_version": "3",
        "target_set": "fer2013_7" if classes == FER2013_7 else "custom",
        "classes": list(classes),
        "canonical_classes": CANONICAL,
        "image": {"column": "image", "width": w, "height": h, "channels": 1, "dtype": "uint8"},
        "splits": split_info,
        "shards": manifest_shards,
        "sources": {
            s: {"rows_in": int((sources == s).sum()), "rows_kept": int((sources == s).sum())}
            for s in sorted(set(sources))
        },
        "params": {},
        "created_by": "train.synthetic",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def _table(images, labels, rows, split, classes, sources, subjects, votes, weights) -> pa.Table:
    n_rows = len(rows)
    ids = [hashlib.sha1(f"{sources[i]}:{i}".encode()).hexdigest()[:16] for i in rows]
    cols = {
        "sample_id": pa.array(ids),
        "source": pa.array(sources[rows].tolist()),
        "locator": pa.array([f"row:{i}" for i in rows]),
        "subject_id": pa.array(None if subjects is None else subjects[rows].tolist(), pa.string())
        if subjects is not None
        else pa.nulls(n_rows, pa.string()),
        "split": pa.array([split] * n_rows),
        "label": pa.array([classes[k] for k in labels[rows]]),
        "label_index": pa.array(labels[rows].astype(np.int16)),
        "image": pa.array([images[i].tobytes() for i in rows], pa.binary()),
        "width": pa.array(np.full(n_rows, images.shape[2], np.int16)),
        "height": pa.array(np.full(n_rows, images.shape[1], np.int16)),
        "dup_group": pa.array(ids),
        "leak_group": pa.array(ids),
        "sample_weight": pa.array(weights[labels[rows]].astype(np.float32)),
        "label_source": pa.array(["dataset"] * n_rows),
    }
    if votes is not None:
        v = votes[rows]
        cols["label_votes"] = pa.array(
            [None if np.isnan(r).any() else r.astype(np.float32).tolist() for r in v], pa.list_(pa.float32())
        )
    return pa.table(cols)
