"""Parquet shards per split, byte-identical for the same inputs.

Rows are routed in one streaming pass over the curated tables into one bucket file per
shard, then each bucket (one shard's worth of rows, never the whole corpus) is sorted by
sample_id and written with fixed writer settings: zstd at a fixed level, fixed row-group
size, no timestamps, schema metadata that depends only on the code version. Sorting by
sample_id (a hash) also mixes sources and classes, which suits sequential reads for training.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fer_data import schema
from fer_data.corpus.inputs import Table
from fer_data.corpus.params import ShardParams

#: Columns the corpus adds to the curated ones (documented like the curated schema).
EXTRA_FIELDS = [
    pa.field("dup_group", pa.string(), False, {"doc": "duplicate group: the sample_id of the row kept for it"}),
    pa.field("identity", pa.string(), True, {"doc": "probable person (jaffe:KA, cluster-000017), null: unknown"}),
    pa.field("leak_group", pa.string(), False, {"doc": "union of duplicate group, identity and subject: one split"}),
    pa.field("sample_weight", pa.float32(), False, {"doc": "class weight of the label in its split x source weight"}),
    pa.field("label_source", pa.string(), False, {"doc": "dataset | review: where the label came from"}),
]
ZSTD_LEVEL = 3
#: Bytes a row takes besides its image(s) (landmarks, embedding, strings), for sizing shards.
ROW_OVERHEAD_BYTES = 2048


def shard_schema(curated: pa.Schema = schema.CURATED) -> pa.Schema:
    """The curated columns with `split` = the corpus split and the dataset's split as `split_dataset`."""
    fields = []
    for f in curated:
        if f.name == "split":
            fields.append(f.with_metadata({"doc": "corpus split: train / val / test"}))
            fields.append(pa.field("split_dataset", pa.string(), True, {"doc": "the dataset's own split"}))
        else:
            fields.append(f)
    meta = dict(curated.metadata or {})
    meta[b"fer_data.corpus_version"] = b"1"
    return pa.schema(fields + EXTRA_FIELDS, metadata=meta)


def shard_counts(rows: int, row_bytes: float, p: ShardParams) -> int:
    """Shards for ROWS rows: at most target_rows rows and about target_mb each."""
    by_rows = math.ceil(rows / p.target_rows)
    by_size = math.ceil(rows * row_bytes / (p.target_mb * 1e6))
    return max(1, by_rows, by_size)


def shard_path(split: str, index: int) -> str:
    return f"shards/{split}/part-{index:05d}.parquet"


def route(
    tables: Sequence[Table], plan: Mapping[int, Mapping[str, np.ndarray]], out_schema: pa.Schema, buckets: Path
) -> None:
    """Stream every table once; append each kept row, with its corpus columns, to its shard's bucket.

    PLAN[table] holds per-row arrays: `shard` (bucket name or None = not published) and the
    corpus columns (split, dup_group, identity, leak_group, sample_weight, label_index, label_source).
    """
    writers: dict[str, pq.ParquetWriter] = {}
    buckets.mkdir(parents=True, exist_ok=True)
    try:
        for ti, table in enumerate(tables):
            cols = plan[ti]
            names = table.schema().names
            start = 0
            for batch in table.batches(names):
                rows = np.arange(start, start + batch.num_rows)
                start += batch.num_rows
                target = cols["shard"][rows]
                for name in sorted({t for t in target if t is not None}):
                    take = np.flatnonzero(target == name)
                    out = _shard_batch(
                        batch.take(pa.array(take)), {k: v[rows[take]] for k, v in cols.items()}, out_schema
                    )
                    if name not in writers:
                        writers[name] = pq.ParquetWriter(buckets / f"{name}.parquet", out_schema, compression="none")
                    writers[name].write_table(out)
    finally:
        for w in writers.values():
            w.close()


def _shard_batch(batch: pa.RecordBatch, cols: Mapping[str, np.ndarray], out_schema: pa.Schema) -> pa.Table:
    arrays = []
    for f in out_schema:
        if f.name == "split_dataset":
            arr = batch.column("split")
        elif f.name in cols:
            arr = pa.array(cols[f.name], type=f.type, from_pandas=True)  # NaN (pandas) = null
        elif f.name in batch.schema.names:
            arr = batch.column(f.name)
        else:
            arr = pa.nulls(batch.num_rows, f.type)  # a column an older curated table lacks
        arrays.append(arr.cast(f.type) if arr.type != f.type else arr)
    return pa.Table.from_arrays(arrays, schema=out_schema)


def finish(bucket: Path, final: Path, out_schema: pa.Schema, p: ShardParams, classes: Sequence[str]) -> dict[str, Any]:
    """Sort a bucket by sample_id and write it as the final shard; its rows, bytes, sha256, row groups."""
    table = pq.read_table(bucket, schema=out_schema) if bucket.exists() else out_schema.empty_table()
    table = table.take(pc.sort_indices(table, sort_keys=[("sample_id", "ascending")]))
    final.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table,
        final,
        row_group_size=p.row_group_rows,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=["source", "label", "label_native", "split", "split_dataset", "detector", "label_source"],
        write_statistics=True,
    )
    bucket.unlink(missing_ok=True)
    labels = table.column("label").to_pylist()
    return {
        "rows": table.num_rows,
        "bytes": final.stat().st_size,
        "sha256": hashlib.sha256(final.read_bytes()).hexdigest(),
        "row_groups": pq.ParquetFile(final).metadata.num_row_groups,
        "class_counts": {c: labels.count(c) for c in classes},
    }
