"""The publication gate: a Great Expectations suite on the written shards, before manifest.json exists.

It checks what a training job silently trusts: no sample, duplicate group, identity or leak
group in two splits; every label in the target set with its right index; image byte lengths =
width x height at the manifest's size; and the manifest's row count for every shard equal to
the rows in that file. It reads the shards back (scalar columns and image lengths only), so it
checks the bytes that will be published, not the plan that wrote them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fer_data.corpus.params import SPLITS

SUITE = "corpus.shards"
COLUMNS = ["sample_id", "split", "dup_group", "identity", "leak_group", "label", "label_index", "width", "height"]


def shard_frame(corpus_dir: Path, shards: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> pd.DataFrame:
    """One row per published row, with the helper columns the suite checks."""
    frames = []
    for entry in shards:
        pf = pq.ParquetFile(corpus_dir / entry["path"])
        for batch in pf.iter_batches(columns=[*COLUMNS, "image"]):
            frame = batch.select(COLUMNS).to_pandas()
            frame["image_nbytes"] = pc.binary_length(batch.column("image")).to_numpy(zero_copy_only=False)
            frame["shard"] = entry["path"]
            frame["shard_split"] = entry["split"]
            frame["manifest_rows"] = entry["rows"]
            frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*COLUMNS, "image_nbytes"])
    frame["image_expected_nbytes"] = frame["width"].astype("int64") * frame["height"].astype("int64")
    frame["shard_rows"] = frame.groupby("shard")["sample_id"].transform("size") if len(frame) else []
    frame["expected_label_index"] = frame["label"].map({c: i for i, c in enumerate(classes)}).astype("Int64")
    for key in ("dup_group", "identity", "leak_group"):
        frame[f"splits_per_{key}"] = frame.groupby(key)["split"].transform("nunique").astype("Int64")
    frame["splits_per_sample_id"] = frame.groupby("sample_id")["split"].transform("nunique").astype("Int64")
    return frame


def expectations(manifest_rows: int, classes: Sequence[str], width: int, height: int) -> list:
    import great_expectations.expectations as gxe

    one_split = [
        gxe.ExpectColumnValuesToBeBetween(column=f"splits_per_{key}", min_value=1, max_value=1)
        for key in ("sample_id", "dup_group", "identity", "leak_group")
    ]
    return [
        gxe.ExpectTableRowCountToEqual(value=int(manifest_rows)),
        gxe.ExpectColumnValuesToNotBeNull(column="sample_id"),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="dup_group"),
        gxe.ExpectColumnValuesToNotBeNull(column="leak_group"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="split", column_B="shard_split"),
        *one_split,
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(classes)),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="label_index", column_B="expected_label_index"),
        gxe.ExpectColumnValuesToBeInSet(column="width", value_set=[int(width)]),
        gxe.ExpectColumnValuesToBeInSet(column="height", value_set=[int(height)]),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="image_nbytes", column_B="image_expected_nbytes"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="shard_rows", column_B="manifest_rows"),
    ]


def run(corpus_dir: Path, manifest: Mapping[str, Any], report_dir: Path):
    """Run the suite (Data Docs under REPORT_DIR/gx); returns the validate.SuiteResult."""
    from fer_data.validate import Validator

    classes = manifest["classes"]
    img = manifest["image"]
    frame = shard_frame(corpus_dir, manifest["shards"], classes)
    total = sum(s["rows"] for s in manifest["shards"])
    validator = Validator(report_dir)
    result = validator.run(SUITE, frame, expectations(total, classes, img["width"], img["height"]))
    validator.build_docs([result])
    return result


def failures(result) -> list[str]:
    from fer_data.validate import describe_observed

    return [f"{e['type']}({e['column'] or ''}) {describe_observed(e)}" for e in result.expectations if not e["success"]]
