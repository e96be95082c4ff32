"""A production batch through the same face preprocessing as the training data.

The batch is curated by the curation engine (fer_data.curate) exactly as a dataset is:
detection, landmarks, alignment, quality metrics (and embeddings when `faces.embeddings` is on),
with the `inbox` source for a folder of images/videos and `inbox_parquet` for an app's Parquet
file of encoded images. Unlabelled images are kept (production data mostly has no labels).
A Parquet table that already holds curated rows (fer-data's schema) is used as it is.

The curated batch lands in OUT/batch/ (curated.parquet, rejects.parquet, metrics.json), so a
report can show its faces and a steward can inspect its rejects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from fer_data.curate import CURATED, METRICS
from fer_data.curate import curate as run_curate
from fer_data.drift.config import DriftConfig
from fer_data.params import Params
from fer_data.records import face_found_counts

BATCH_DIR = "batch"

#: curate(source, root, out, params) -> metrics: the engine's `curate`, or one that runs on a task runner.
Curate = Callable[[str, Path, Path, Params], dict]


@dataclass
class Batch:
    """The curated rows of a batch (scalar columns and embeddings) and its face-finding counts."""

    path: str
    table: Path  # Parquet file or folder of the curated rows (images are read from it on demand)
    features: dict[str, np.ndarray]  # float64, NaN where null
    labels: list[str | None]
    sample_ids: list[str]
    embeddings: np.ndarray | None  # (rows with an embedding, 128) float32
    read: int | None = None  # inputs read (None for an already-curated table)
    searched: int | None = None  # inputs where faces were searched for
    found: int | None = None
    rejected_by_reason: dict[str, int] | None = None

    @property
    def rows(self) -> int:
        return len(self.sample_ids)

    @property
    def face_found_rate(self) -> float | None:
        return self.found / self.searched if self.searched else None


def is_curated_table(path: Path) -> bool:
    """A Parquet file (or folder) written with fer-data's curated schema."""
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files or files[0].suffix != ".parquet":
        return False
    meta = pq.read_schema(files[0]).metadata or {}
    return b"fer_data.schema_version" in meta


def source_for(path: Path) -> str:
    """The source that reads a batch: inbox_parquet for Parquet, inbox for a folder of images/videos."""
    if path.is_file() and path.suffix == ".parquet":
        return "inbox_parquet"
    if path.is_dir() and any(path.glob("*.parquet")) and not any(p.suffix != ".parquet" for p in path.iterdir()):
        return "inbox_parquet"
    if path.is_dir():
        return "inbox"
    raise ValueError(f"{path}: a batch is a folder of images/videos or a Parquet file")


def ingest(
    batch: str | Path, out_dir: str | Path, params: Params, cfg: DriftConfig, curate: Curate = run_curate
) -> Batch:
    """Curate a batch into OUT/batch/ (or use an already-curated table) and load what the checks need.

    CURATE is the engine's `curate` (a local process pool) unless the caller runs it elsewhere: the
    drift flow passes one on the task runner params.yaml `orchestration` picks (a Dask cluster).
    """
    path = Path(batch)
    if not path.exists():
        raise FileNotFoundError(f"batch {path} does not exist")
    if is_curated_table(path):
        return load(path, str(path), cfg.features)
    name = source_for(path)
    ing = cfg.ingest
    source_params = {
        "class_map": ing.class_map,
        "precropped": ing.precropped,
        "expected_face_fraction": ing.expected_face_fraction,
    }
    if name == "inbox":
        source_params |= {
            "labels_csv": ing.labels_csv,
            "video_stride": ing.video_stride,
            "max_frames_per_video": ing.max_frames_per_video,
        }
    run_params = replace(params, keep_unlabelled=True, sources={**params.sources, name: source_params})
    target = Path(out_dir) / BATCH_DIR
    metrics = curate(name, path, target, run_params)
    return load(target / CURATED, str(path), cfg.features, metrics)


def load(table: Path, batch_path: str, features: Sequence[str], metrics: dict | None = None) -> Batch:
    """The batch's scalar columns and embeddings (small per-row data; images stay on disk)."""
    data = ds.dataset(str(table), format="parquet")
    names = set(data.schema.names)
    columns = [c for c in (*features, "label", "sample_id", "embedding") if c in names]
    t = data.to_table(columns=columns)
    feats = {f: _floats(t, f) for f in features}
    batch = Batch(
        batch_path,
        table,
        feats,
        t.column("label").to_pylist() if "label" in names else [None] * t.num_rows,
        t.column("sample_id").to_pylist(),
        _embeddings(t),
    )
    if metrics is not None:
        reasons = dict(metrics.get("rejected_by_reason") or {})
        batch.read = int(metrics["read"])
        batch.found, batch.searched = face_found_counts(int(metrics["curated"]), reasons)
        batch.rejected_by_reason = reasons
    return batch


def load_metrics(out_dir: str | Path) -> dict:
    return json.loads((Path(out_dir) / BATCH_DIR / METRICS).read_text())


def _floats(t: pa.Table, column: str) -> np.ndarray:
    if column not in t.column_names:
        return np.full(t.num_rows, np.nan)
    return t.column(column).to_numpy(zero_copy_only=False).astype(np.float64)


def _embeddings(t: pa.Table) -> np.ndarray | None:
    if "embedding" not in t.column_names:
        return None
    vectors = [v for v in t.column("embedding").to_pylist() if v is not None]
    return np.asarray(vectors, np.float32) if vectors else None


def faces_of(table: Path, sample_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Aligned faces of the given rows, read from the curated batch (for the report)."""
    data = ds.dataset(str(table), format="parquet")
    wanted = pa.array(list(sample_ids), pa.string())
    t = data.to_table(
        columns=["sample_id", "image", "width", "height"], filter=ds.field("sample_id").isin(wanted)
    ).to_pylist()
    return {r["sample_id"]: np.frombuffer(r["image"], np.uint8).reshape(r["height"], r["width"]) for r in t}
