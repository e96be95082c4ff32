"""Which curated tables enter the corpus, and their per-row metadata (never the images).

Without explicit tables the corpus reads `data/validated/manifest.json`, so only tables that
passed validation are published. Each table is a `fer-data curate` output folder; its rows
are read in a fixed order (part files sorted by name), which `row` numbers, so a later
streaming pass over the images can find each row again without holding them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fer_data.curate import CURATED, METRICS

#: Per-row columns the corpus decides on (everything but pixels, landmarks and embeddings).
META_COLUMNS = (
    "sample_id",
    "source",
    "subject_id",
    "sequence_id",
    "locator",
    "split",
    "label",
    "face_size",
    "sharpness",
    "contrast",
    "det_score",
    "eye_distance",
    "raw_sha256",
)
EMBEDDING = "embedding"
EMBEDDING_DIM = 128
BATCH_ROWS = 4096
RECURATE_HINT = (
    "re-curate with `faces.embeddings: true`, or set corpus.identities.cluster: false "
    "(identities then come from subject ids only)"
)


class CorpusInputError(ValueError):
    """A curated table cannot enter the corpus (one-line message)."""


@dataclass(frozen=True)
class Table:
    """One `fer-data curate` output folder and the source name its rows carry."""

    name: str
    path: Path
    root: str | None = None

    @property
    def parts(self) -> list[Path]:
        return sorted((self.path / CURATED).glob("*.parquet"))

    def schema(self) -> pa.Schema:
        parts = self.parts
        if not parts:
            raise CorpusInputError(f"{self.path / CURATED}: no part files (not a `fer-data curate` output)")
        return pq.read_schema(parts[0])

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """The table's rows in their fixed order, a batch at a time."""
        for part in self.parts:
            yield from pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS, columns=list(columns))


def table_from_dir(path: str | Path, root: str | None = None) -> Table:
    """A curate output folder; its source name from metrics.json (else the folder name)."""
    path = Path(path)
    if not (path / CURATED).is_dir():
        raise CorpusInputError(f"{path} has no {CURATED}/: not a `fer-data curate` output")
    metrics = path / METRICS
    name = json.loads(metrics.read_text()).get("source") if metrics.exists() else None
    return Table(name or path.name, path, root)


def tables_from_validated(manifest_path: str | Path, raw: Mapping[str, Any]) -> list[Table]:
    """The tables listed in the validated-dataset manifest (fer_data.manifest), roots from params."""
    manifest_path = Path(manifest_path)
    if not manifest_path.exists():
        raise CorpusInputError(f"{manifest_path} does not exist: run `fer-data manifest` (after validation) first")
    doc = json.loads(manifest_path.read_text())
    roots = {k: (v or {}).get("root") for k, v in (raw.get("sources") or {}).items()}
    tables = []
    for name, entry in sorted(doc.get("sources", {}).items()):
        parts = [Path(p["path"]) for p in entry.get("curated", [])]
        folder = parts[0].parent.parent if parts else Path("data/curated") / name
        tables.append(Table(name, folder, roots.get(name)))
    return tables


def check_unique(tables: Sequence[Table]) -> None:
    names = [t.name for t in tables]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise CorpusInputError(f"more than one curated table for source(s) {', '.join(dupes)}")


def has_embeddings(table: Table) -> bool:
    """True when the table has an `embedding` column with at least one value (an empty table counts as having it)."""
    if EMBEDDING not in table.schema().names:
        return False
    rows = nulls = 0
    for batch in table.batches([EMBEDDING]):
        rows += batch.num_rows
        nulls += batch.column(0).null_count
    return rows == 0 or nulls < rows


def load_meta(tables: Sequence[Table], with_embeddings: bool) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Per-row metadata of every table (`table`, `row` locate each row) and the embeddings (NaN rows: none)."""
    frames, embeds = [], []
    for ti, table in enumerate(tables):
        names = table.schema().names
        columns = [c for c in META_COLUMNS if c in names]
        if with_embeddings and EMBEDDING in names:
            columns.append(EMBEDDING)
        row = 0
        for batch in table.batches(columns):
            frame = batch.select([c for c in columns if c != EMBEDDING]).to_pandas()
            frame["table"] = ti
            frame["row"] = np.arange(row, row + batch.num_rows)
            row += batch.num_rows
            frames.append(frame)
            if with_embeddings:
                embeds.append(_embedding_array(batch, EMBEDDING in columns))
    meta = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*META_COLUMNS, "table", "row"])
    for c in META_COLUMNS:
        if c not in meta:
            meta[c] = None
    meta["source"] = [tables[t].name for t in meta["table"]]  # the corpus's name for the table
    emb = np.concatenate(embeds) if embeds else (np.zeros((0, EMBEDDING_DIM), np.float32) if with_embeddings else None)
    return meta, emb


def _embedding_array(batch: pa.RecordBatch, present: bool) -> np.ndarray:
    out = np.full((batch.num_rows, EMBEDDING_DIM), np.nan, np.float32)
    if not present:
        return out
    col = batch.column(EMBEDDING)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    if valid.any():
        values = col.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
        out[valid] = values.reshape(-1, EMBEDDING_DIM)
    return out
