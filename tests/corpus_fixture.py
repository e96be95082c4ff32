"""A small corpus in the layout of the shared contract, assembled from real curated demo tables.

The report tests must not wait for `fer-data corpus`: this builds DIR/shards, DIR/groups.parquet
and DIR/manifest.json from `fer-data demo` + `fer-data curate` output of three sources (JAFFE and
CK+ read from files, FER2013 from its CSV), with decisions planted so every report section has
something to show: JAFFE subjects as known identities, one cross-source identity cluster, a
duplicate group within CK+ (a sequence's neutral frames) and one across sources, a label
conflict, and rows dropped for each reason.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fer_data import labels
from fer_data.schema import CURATED

SOURCES = ("jaffe", "ckplus", "fer2013")
SPLITS = ("train", "val", "test")
ROW_GROUP = 16  # small, so the report's row-group reads are exercised


def curate_demo(work: Path) -> dict[str, dict[str, str]]:
    """`fer-data demo` + `fer-data curate` of SOURCES under WORK; {source: {curated, root}} (absolute)."""
    from click.testing import CliRunner

    from fer_data.cli import main

    raw, curated = work / "raw", work / "curated"
    runner = CliRunner()
    res = runner.invoke(main, ["demo", str(raw), *[a for s in SOURCES for a in ("--source", s)]])
    assert res.exit_code == 0, res.output
    out = {}
    for s in SOURCES:
        res = runner.invoke(
            main, ["curate", "--source", s, "--root", str(raw / s), "--out", str(curated / s), "--workers", "1"]
        )
        assert res.exit_code == 0, res.output
        out[s] = {"curated": str(curated / s), "root": str(raw / s)}
    return out


def _split_of(sample_id: str) -> str:
    h = int(hashlib.sha1(sample_id.encode()).hexdigest()[:8], 16) % 10
    return "train" if h < 7 else "val" if h < 8 else "test"


def _plant(frame: pd.DataFrame) -> pd.DataFrame:
    """Group decisions a corpus build would make, planted on known rows."""
    f = frame.copy()
    f["dup_group"] = f["sample_id"]
    f["identity"] = None
    jaffe = f["source"] == "jaffe"
    f.loc[jaffe, "identity"] = "jaffe:" + f.loc[jaffe, "subject_id"]
    ck = f[f["source"] == "ckplus"].sort_values("locator")
    # CK+ neutral frames 1 and 2 of the first sequence: near duplicates, and labelled alike.
    first_seq = ck[ck["sequence_id"] == ck["sequence_id"].iloc[0]]
    neutral = first_seq[first_seq["label"] == "neutral"]["sample_id"].tolist()[:2]
    f.loc[f["sample_id"].isin(neutral), "dup_group"] = neutral[0]
    # A cross-source duplicate whose labels disagree: a CK+ peak frame and a FER2013 row.
    peak = first_seq[first_seq["label"] != "neutral"]["sample_id"].iloc[0]
    fer = f[(f["source"] == "fer2013") & (f["label"] != f.loc[f["sample_id"] == peak, "label"].iloc[0])]
    fer_id = fer["sample_id"].iloc[0]
    f.loc[f["sample_id"].isin([peak, fer_id]), "dup_group"] = peak
    # One person across sources (clustered): CK+ subject of the first sequence and two JAFFE rows.
    ck_subject = f["subject_id"] == first_seq["subject_id"].iloc[0]
    two_jaffe = f[jaffe & (f["subject_id"] == f.loc[jaffe, "subject_id"].iloc[0])]["sample_id"].tolist()[:2]
    f.loc[(ck_subject & (f["source"] == "ckplus")) | f["sample_id"].isin(two_jaffe), "identity"] = "cluster-000001"
    # Leak groups: the union of duplicate groups and identities (here, small enough to do by hand).
    f["leak_group"] = f["identity"].fillna(f["dup_group"])
    f.loc[f["sample_id"].isin([peak, fer_id]), "leak_group"] = "cluster-000001"
    f["split_corpus"] = f["leak_group"].map(_split_of)
    f["kept"] = True
    f["drop_reason"] = None
    ranked = f.sort_values(["dup_group", "sharpness"], ascending=[True, False])
    dropped = ranked.duplicated("dup_group")
    f.loc[dropped[dropped].index, ["kept", "drop_reason"]] = [False, "duplicate"]
    conflict = f.groupby("dup_group")["label"].transform("nunique") > 1
    f["label_conflict"] = conflict
    f.loc[f["label_conflict"] & f["kept"], ["kept", "drop_reason"]] = [False, "review"]
    return f


def build_corpus(sources: dict[str, dict[str, str]], out: Path, target: str = "fer2013_7") -> Path:
    """Write a contract-shaped corpus of the curated SOURCES to OUT; returns OUT."""
    classes = list(labels.target_set(target).classes)
    frame = pd.concat(
        [pd.read_parquet(Path(v["curated"]) / "curated.parquet").assign(source=k) for k, v in sources.items()],
        ignore_index=True,
    )
    frame = _plant(frame)
    groups = frame[
        ["sample_id", "source", "locator", "label", "dup_group", "identity", "leak_group", "kept", "drop_reason"]
    ].assign(split=frame["split_corpus"], label_conflict=frame["label_conflict"])
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(groups, preserve_index=False), out / "groups.parquet")
    kept = frame[frame["kept"]].copy()
    kept["split_dataset"] = kept["split"]
    kept["split"] = kept["split_corpus"]
    kept["sample_weight"] = 1.0
    kept["label_source"] = "dataset"
    columns = [f.name for f in CURATED] + [
        "split_dataset",
        "dup_group",
        "identity",
        "leak_group",
        "sample_weight",
        "label_source",
    ]
    manifest = {
        "kind": "fer-data-corpus",
        "corpus_version": "1",
        "curated_schema_version": "3",
        "target_set": target,
        "classes": classes,
        "canonical_classes": list(labels.CANONICAL),
        "image": {"column": "image", "width": 48, "height": 48, "channels": 1, "dtype": "uint8"},
        "splits": {},
        "shards": [],
        "sources": {},
        "params": {"report": {"faces_per_class": 4}},
        "created_by": "tests/corpus_fixture.py",
    }
    for split in SPLITS:
        rows = kept[kept["split"] == split].sort_values("sample_id")[columns]
        counts = {c: int((rows["label"] == c).sum()) for c in classes}
        manifest["splits"][split] = {
            "rows": len(rows),
            "class_counts": counts,
            "class_weights": {c: (len(rows) / (len(classes) * n) if n else 0.0) for c, n in counts.items()},
        }
        path = out / "shards" / split / "part-00000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path, row_group_size=ROW_GROUP)
        manifest["shards"].append(
            {
                "path": path.relative_to(out).as_posix(),
                "split": split,
                "rows": len(rows),
                "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "row_groups": pq.ParquetFile(path).num_row_groups,
                "class_counts": counts,
            }
        )
    for name, where in sources.items():
        mine = frame[frame["source"] == name]
        manifest["sources"][name] = {
            **where,
            "rows_in": len(mine),
            "rows_kept": int(mine["kept"].sum()),
            "weight": 1.0,
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out
