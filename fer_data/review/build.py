"""`fer-data review`: out-of-fold models, confident learning, the label-issues table and the review page.

    OUT/oof/oof.parquet, oof.json    each train row's out-of-fold class probabilities (train.oof)
    OUT/label_issues.parquet         one row per train row, ranked (1: most likely mislabelled)
    OUT/summary.json                 counts for `dvc metrics` (rows, flagged, ambiguous, OOF accuracy)
    OUT/index.html                   the review page (fer_data.review.page), written last
Everything is written under OUT/.staging-*/ and moved into place when complete.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fer_data import output
from fer_data.review import detect
from fer_data.review.page import write_page
from fer_data.review.params import ReviewParams, oof, resolve

log = logging.getLogger("fer_data.review")

ISSUES = "label_issues.parquet"
SUMMARY = "summary.json"
PAGE = "index.html"
OOF_DIR = "oof"
#: What summary.json repeats of the out-of-fold run (train.oof's oof.json has it all); the last two only
#: for the fixed-feature models.
OOF_SUMMARY_KEYS = ("model", "folds", "accuracy", "per_fold", "seconds", "person_features", "feature_rows")
PUBLISH_ORDER = (OOF_DIR, ISSUES, SUMMARY, PAGE)
#: Train-shard columns the table and the page need (small per-row metadata; no pixels).
SHARD_COLUMNS = ("sample_id", "source", "locator", "label", "label_votes", "label_source")

ISSUES_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), False),
        pa.field("source", pa.string()),
        pa.field("locator", pa.string()),
        pa.field("label", pa.string()),
        pa.field("suggested_label", pa.string()),
        pa.field("score", pa.float32()),  # 1 - label quality: higher = more likely mislabelled
        pa.field("rank", pa.int64()),  # 1 = the most likely mislabelled row
        pa.field("ambiguous", pa.bool_()),
        pa.field("issue", pa.bool_()),  # flagged by confident learning (review.filter_by)
        pa.field("action", pa.string()),  # suggested: relabel | drop | keep
        pa.field("entropy", pa.float32()),  # normalised entropy of the predicted distribution
        pa.field("vote_share", pa.float32()),  # FER+ top class's share of the votes (null: no votes)
        pa.field("label_source", pa.string()),
        pa.field("fold", pa.int16()),
        pa.field("probs", pa.list_(pa.float32())),  # out-of-fold distribution, manifest `classes` order
    ]
)


def review(corpus_dir: str | Path, out_dir: str | Path, raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Review the corpus's train split into OUT_DIR; returns the summary. Bad params raise before any work."""
    from train.oof import out_of_fold, read_oof

    p = resolve(raw)
    oof_p = oof(p)
    start = time.perf_counter()
    out = Path(out_dir)
    with output.publishing(out, PUBLISH_ORDER) as staging:
        oof_summary = out_of_fold(corpus_dir, staging / OOF_DIR, oof_p)
        rows, probs = read_oof(staging / OOF_DIR)
        meta = _shard_meta(Path(corpus_dir))
        table, issues = label_issues(rows.to_pandas(), probs, meta, oof_summary["classes"], p)
        pq.write_table(table, staging / ISSUES)
        summary = _summary(table, issues, oof_summary, oof_summary["classes"], time.perf_counter() - start)
        (staging / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        write_page(staging / PAGE, Path(corpus_dir), table, summary, p)
    log.info("review: %s: %d rows, %d flagged, %d ambiguous", out, summary["rows"], summary["flagged"],
             summary["ambiguous"])  # fmt: skip
    return summary


def _shard_meta(corpus_dir: Path) -> pd.DataFrame:
    """SHARD_COLUMNS of the train shards, one shard in memory at a time (no pixels read)."""
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    frames = []
    for shard in manifest["shards"]:
        if shard["split"] != "train":
            continue
        pf = pq.ParquetFile(corpus_dir / shard["path"])
        have = [c for c in SHARD_COLUMNS if c in pf.schema_arrow.names]
        frame = pf.read(columns=have).to_pandas()
        frames.append(frame.reindex(columns=list(SHARD_COLUMNS)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SHARD_COLUMNS))


def suggest(issue: np.ndarray, ambiguous: np.ndarray, top: np.ndarray, top_prob: np.ndarray, labels: np.ndarray,
            min_prob: float) -> np.ndarray:  # fmt: skip
    """relabel (flagged, the model is sure of another class, the face is not ambiguous), drop (other flagged), keep."""
    relabel = issue & ~ambiguous & (top != labels) & (top_prob >= min_prob)
    return np.where(relabel, "relabel", np.where(issue, "drop", "keep"))


def label_issues(rows: pd.DataFrame, probs: np.ndarray, meta: pd.DataFrame, classes: list[str], p: ReviewParams):
    """The label_issues table (ISSUES_SCHEMA, ranked) and the detector's result."""
    labels = rows["label_index"].to_numpy(np.int64)
    found = detect.find_issues(probs, labels, p.filter_by, p.rank_by)
    meta = meta.set_index("sample_id").reindex(rows["sample_id"])
    entropy = detect.entropy(probs) if len(probs) else np.zeros(0)
    share = detect.votes_top_share(meta["label_votes"].tolist())
    ambiguous = (entropy >= p.ambiguous_entropy) | (np.nan_to_num(share, nan=1.0) < p.ambiguous_vote_share)
    top = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    top_prob = probs[np.arange(len(top)), top] if len(probs) else np.zeros(0)
    action = suggest(found.flagged, ambiguous, top, top_prob, labels, p.relabel_min_prob)
    suggested = np.where(action == "relabel", np.array(classes, object)[top], None)
    frame = pd.DataFrame(
        {
            "sample_id": rows["sample_id"].to_numpy(),
            "source": rows["source"].to_numpy(),
            "locator": meta["locator"].to_numpy(dtype=object),
            "label": np.array(classes, object)[labels],
            "suggested_label": suggested,
            "score": (1 - found.quality).astype(np.float32),
            "rank": found.rank,
            "ambiguous": ambiguous,
            "issue": found.flagged,
            "action": action,
            "entropy": entropy.astype(np.float32),
            "vote_share": share.astype(np.float32),
            "label_source": meta["label_source"].fillna("dataset").to_numpy(dtype=object),
            "fold": rows["fold"].to_numpy(np.int16),
            "probs": list(probs.astype(np.float32)),
        }
    ).sort_values("rank", kind="stable")
    table = pa.Table.from_pandas(frame, schema=ISSUES_SCHEMA, preserve_index=False).replace_schema_metadata(None)
    return table, found


def _summary(table: pa.Table, found: detect.Issues, oof_summary: dict, classes: list[str], seconds: float) -> dict:
    actions = pd.Series(table.column("action").to_pylist()).value_counts()
    q = found.joint
    return {
        "rows": table.num_rows,
        "flagged": int(_count_true(table, "issue")),
        "ambiguous": int(_count_true(table, "ambiguous")),
        "suggested": {a: int(actions.get(a, 0)) for a in ("relabel", "drop", "keep")},
        "estimated_noise_rate": round(float(q.sum() - np.trace(q)), 4) if q.size else 0.0,
        "thresholds": {c: round(float(t), 4) for c, t in zip(classes, found.thresholds)},
        "joint": [[round(float(v), 5) for v in row] for row in q],
        "classes": classes,
        "oof": {k: oof_summary[k] for k in OOF_SUMMARY_KEYS if k in oof_summary},
        "seconds": round(seconds, 2),
    }


def _count_true(table: pa.Table, column: str) -> int:
    return int(np.asarray(table.column(column).to_numpy(zero_copy_only=False), bool).sum())
